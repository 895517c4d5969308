"""Steps for the tests of the admin console's user store pages (tests/integration/directory_console):
the console's form for a directory over the test's slapd subtree, posting it as a browser
does, reading the page's alert and notice, and what a post stored or left alone."""

from __future__ import annotations

import json
from typing import Any

import boto3
import lxml.html
import requests

from idp_core.directories import store
from idp_core.models import AuditEvent, Directory
from tests.helpers.console import submit, text_of
from tests.helpers.sso import Sso
from tests.support.slapd import Slapd, Subtree

SERVICE_PASSWORD = "service-secret"
NEW_SERVICE_PASSWORD = "service-secret-2"
# The password of alice in the ``people`` fixture of tests/integration/directory_console/conftest.py.
ALICE_PASSWORD = "alice-Directory-1"
TEST_PASSWORD_FIELD = "password"


def form_for(slapd: Slapd, tree: Subtree, **changes: str) -> dict[str, str]:
    """The console's form for the directory ``corp`` over the test's subtree, as a browser
    posts it: every text field, the ticked boxes only."""
    form = {
        "name": "corp",
        "display_name": "Corp LDAP",
        "kind": "openldap",
        "urls": slapd.url,
        "allow_cleartext": "on",  # slapd speaks plain LDAP on 127.0.0.1 (S30)
        "ca_cert_pem": "",
        "verify_certificates": "on",
        "bind_dn": f"uid=svc,{tree.dn}",
        "bind_password": SERVICE_PASSWORD,
        "bases": tree.people,
        "user_filter": "uid",
        "custom_filter": "",
        **{f"map_{field}": "" for field in ("username", "email", "phone", "first_name", "last_name")},
        "map_display_name": "",
        "map_groups": "",
        "group_lookup": "memberOf",
        "group_base": "",
        "group_member_attribute": "member",
        "activate": "on",
        "auto_register": "on",
        "schedule": "",
    }
    form.update(changes)
    return {name: value for name, value in form.items() if value != "-"}


def alert_of(response: requests.Response) -> str:
    (alert,) = lxml.html.fromstring(response.text).xpath("//*[@role='alert']")
    return " ".join(alert.text_content().split())


def notice_of(response: requests.Response) -> str:
    (notice,) = lxml.html.fromstring(response.text).xpath("//*[@role='status']")
    return " ".join(notice.text_content().split())


def stored() -> dict[str, Any]:
    """Every stored directory and directory change event, to show a refused post wrote nothing."""
    return {
        "items": sorted((item.name, item.settings, item.bind_password) for item in Directory.scan()),
        "events": sorted(
            event.type
            for event in AuditEvent.scan()
            if event.type.startswith("directory.") and event.type != "directory.test"
        ),
    }


def sealed_password(name: str = "corp") -> str | None:
    return store.bind_password(Directory.get(name), kms=boto3.client("kms"))


def details_text(event: AuditEvent) -> str:
    return json.dumps(event.details.as_dict() if event.details else {})


def audit_events(event_type: str) -> list[AuditEvent]:
    return sorted((e for e in AuditEvent.scan() if e.type == event_type), key=lambda e: e.at)


def create_corp(sso: Sso, admin: requests.Session, slapd: Slapd, tree: Subtree, **changes: str) -> None:
    created = submit(sso, admin, "/admin/directories", form_for(slapd, tree, **changes))
    assert created.status_code == 303, text_of(created)[:3000]


def form_value(document: Any, name: str) -> str:
    (control,) = document.xpath(f"//form//*[@name='{name}']")
    if control.tag == "select":
        (selected,) = control.xpath("option[@selected]/@value")
        return str(selected)
    if control.get("type") == "checkbox":
        return "on" if control.get("checked") is not None else ""
    return str(control.text or "") if control.tag == "textarea" else str(control.get("value"))
