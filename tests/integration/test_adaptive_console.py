"""The admin console for adaptive policies over HTTP: create, edit and delete a policy,
admin-only access, CSRF (S16), bad input refused with the policy's own sentence and nothing
stored (S26), the audit actor (S25), and no deleting a policy that an app still uses."""

from __future__ import annotations

from typing import Any

import lxml.html
import pytest
import requests

from idp_core import accounts, apps
from idp_core.adaptive import policies
from idp_core.adaptive.policies import AdaptivePolicy
from idp_core.models import App, AuditEvent, KeyValue
from tests.helpers.console import submit, text_of
from tests.helpers.sso import PASSWORD, Sso, csrf_token

FULL_FORM = {
    "allow_cidrs": "192.0.2.0/24\r\n\r\n  2001:db8::/32 \r\n",
    "deny_cidrs": "198.51.100.7",
    "outside_allow": "challenge",
    "register_devices": "on",
    "max_devices": "3",
    "on_exceed": "deny",
    "alert_user": "on",
    "alert_email": "security@example.com",
    "on_new_device": "challenge",
    "notify_new_sign_in": "on",
    "trust_days": "14",
}
EXPECTED = AdaptivePolicy(
    name="office",
    allow_cidrs=("192.0.2.0/24", "2001:db8::/32"),
    deny_cidrs=("198.51.100.7/32",),
    outside_allow="challenge",
    register_devices=True,
    max_devices=3,
    on_exceed="deny",
    alert_user=True,
    alert_email="security@example.com",
    on_new_device="challenge",
    notify_new_sign_in=True,
    trust_days=14,
)
# The form as a browser sends it for the default policy: unticked boxes are not sent.
DEFAULT_FORM = {
    "allow_cidrs": "",
    "deny_cidrs": "",
    "outside_allow": "deny",
    "max_devices": "5",
    "on_exceed": "challenge",
    "alert_email": "",
    "on_new_device": "allow",
    "trust_days": "0",
}


pytestmark = pytest.mark.sso_setup("password_only")


def stored_policies() -> dict[str, Any]:
    """Every stored policy and policy event, to show that a refused request wrote nothing."""
    return {
        "items": sorted(
            (item.name, item.value) for item in KeyValue.scan() if item.name.startswith(policies.KEY_PREFIX)
        ),
        "events": sorted(e.type for e in AuditEvent.scan() if e.type.startswith("adaptive.")),
    }


def create_office(sso: Sso, admin: requests.Session) -> None:
    created = submit(sso, admin, "/admin/adaptive", {"name": "office", **FULL_FORM})
    assert created.status_code == 303, text_of(created)[:2000]


# ---------------------------------------------------------------- create, edit, delete


def test_the_admin_creates_a_policy_with_every_setting(sso: Sso, admin: requests.Session) -> None:
    assert "There are no adaptive policies yet." in sso.get(admin, "/admin/adaptive").text
    assert 'href="/admin/adaptive"' in sso.get(admin, "/admin").text

    created = submit(
        sso, admin, "/admin/adaptive", {"name": "Office", **FULL_FORM}, page="/admin/adaptive/new"
    )

    assert created.status_code == 303
    assert created.headers["Location"] == "/admin/adaptive/office?notice=policy-created"
    assert policies.get_policy("office") == EXPECTED
    page = text_of(sso.get(admin, created.headers["Location"]))
    assert "The adaptive policy was created." in page
    assert ">192.0.2.0/24\n2001:db8::/32</textarea>" in page
    (event,) = [e for e in AuditEvent.scan() if e.type == "adaptive.policy.created"]
    assert event.actor == "root" and event.subject == "office"

    listing = sso.get(admin, "/admin/adaptive")
    row = " ".join(lxml.html.fromstring(listing.text).xpath("//tbody/tr")[0].text_content().split())
    assert row == (
        "office 2 networks 1 networks Ask for a second factor On, at most 3; then deny "
        "Ask for a second factor 14 days —"
    )


def test_the_admin_edits_a_policy(sso: Sso, admin: requests.Session) -> None:
    create_office(sso, admin)

    saved = submit(sso, admin, "/admin/adaptive/office", DEFAULT_FORM, page="/admin/adaptive/office")

    assert saved.status_code == 303
    assert saved.headers["Location"] == "/admin/adaptive/office?notice=policy-saved"
    assert policies.get_policy("office") == AdaptivePolicy(name="office")
    assert "The adaptive policy was saved" in sso.get(admin, saved.headers["Location"]).text
    (event,) = [e for e in AuditEvent.scan() if e.type == "adaptive.policy.changed"]
    assert event.actor == "root" and event.subject == "office"
    row = " ".join(
        lxml.html.fromstring(sso.get(admin, "/admin/adaptive").text)
        .xpath("//tbody/tr")[0]
        .text_content()
        .split()
    )
    assert row == "office 0 networks 0 networks — Off Allow Off —"


def test_the_form_shows_the_stored_policy_and_the_apps_using_it(sso: Sso, admin: requests.Session) -> None:
    create_office(sso, admin)
    accounts.create_group("ops")
    apps.create_aws_app("prod", apps.AwsAppChoices(account_id="123456789012", roles=[("Dev", "ops")]))
    App.get("prod").update(actions=[App.adaptive_policy.set("office")])

    document = lxml.html.fromstring(sso.get(admin, "/admin/adaptive/office").text)

    def value(name: str) -> str:
        (control,) = document.xpath(f"//*[@name='{name}']")
        if control.tag == "select":
            (selected,) = control.xpath("option[@selected]/@value")
            return str(selected)
        if control.get("type") == "checkbox":
            return "on" if control.get("checked") is not None else ""
        return str(control.text or "") if control.tag == "textarea" else str(control.get("value"))

    assert value("allow_cidrs") == "192.0.2.0/24\n2001:db8::/32"
    assert value("deny_cidrs") == "198.51.100.7/32"
    for name in ("outside_allow", "max_devices", "on_exceed", "alert_email", "on_new_device", "trust_days"):
        assert value(name) == FULL_FORM[name], name
    for name in ("register_devices", "alert_user", "notify_new_sign_in"):
        assert value(name) == "on", name
    assert "Used by: prod." in document.text_content()
    assert "prod" in sso.get(admin, "/admin/adaptive").text


def test_the_admin_deletes_an_unused_policy(sso: Sso, admin: requests.Session) -> None:
    create_office(sso, admin)

    deleted = submit(sso, admin, "/admin/adaptive/office/delete", {}, page="/admin/adaptive/office")

    assert deleted.status_code == 303
    assert deleted.headers["Location"] == "/admin/adaptive?notice=policy-deleted"
    assert policies.list_policies() == []
    assert sso.get(admin, "/admin/adaptive/office").status_code == 404
    assert "The adaptive policy was deleted." in sso.get(admin, deleted.headers["Location"]).text
    (event,) = [e for e in AuditEvent.scan() if e.type == "adaptive.policy.deleted"]
    assert event.actor == "root"


def test_a_policy_an_app_uses_cannot_be_deleted(sso: Sso, admin: requests.Session) -> None:
    create_office(sso, admin)
    accounts.create_group("ops")
    apps.create_aws_app("prod", apps.AwsAppChoices(account_id="123456789012", roles=[("Dev", "ops")]))
    App.get("prod").update(actions=[App.adaptive_policy.set("office")])
    before = stored_policies()

    refused = submit(sso, admin, "/admin/adaptive/office/delete", {}, page="/admin/adaptive/office")

    assert refused.status_code == 409
    page = text_of(refused)
    assert (
        "The adaptive policy 'office' is used by the app(s) prod; choose another policy for them first"
        in page
    )
    assert 'role="alert"' in refused.text
    assert stored_policies() == before
    assert policies.get_policy("office") == EXPECTED


def test_a_new_policy_cannot_take_an_existing_name(sso: Sso, admin: requests.Session) -> None:
    create_office(sso, admin)
    before = stored_policies()
    refused = submit(sso, admin, "/admin/adaptive", {"name": "office", **DEFAULT_FORM})
    assert refused.status_code == 409
    assert "The adaptive policy 'office' already exists." in text_of(refused)
    assert stored_policies() == before


# ---------------------------------------------------------------- bad input


BAD_INPUT = [
    (
        {"allow_cidrs": "192.0.2.0/24\n10.0.0.1/8"},
        "'10.0.0.1/8' in the allow list is not a network in CIDR form",
        ">192.0.2.0/24\n10.0.0.1/8</textarea>",
    ),
    (
        {"deny_cidrs": "not-a-network"},
        "'not-a-network' in the deny list is not a network in CIDR form",
        ">not-a-network</textarea>",
    ),
    (
        {"max_devices": "0"},
        "The number of devices allowed must be a whole number from 1 to 100.",
        'value="0"',
    ),
    (
        {"max_devices": "-1"},
        "The number of devices allowed must be a whole number from 1 to 100.",
        'value="-1"',
    ),
    (
        {"max_devices": "101"},
        "The number of devices allowed must be a whole number from 1 to 100.",
        'value="101"',
    ),
    ({"max_devices": "1000"}, "The number of devices allowed must be a whole number from 1 to 100.", None),
    ({"max_devices": "many"}, "Number of devices allowed must be a whole number.", 'value="many"'),
    (
        {"trust_days": "400"},
        "The days a device stays trusted must be a whole number from 0 (off) to 365.",
        'value="400"',
    ),
    (
        {"outside_allow": "maybe"},
        "The action outside the allow list must be one of: allow, challenge, deny.",
        None,
    ),
    (
        {"on_exceed": "allow"},
        "The action when the device limit is exceeded must be one of: challenge, deny.",
        None,
    ),
    (
        {"on_new_device": "ignore"},
        "The action for a new device or address must be one of: allow, challenge, deny.",
        None,
    ),
    (
        {"alert_email": "not-an-address"},
        "'not-an-address' is not an e-mail address.",
        'value="not-an-address"',
    ),
    ({"register_devices": ""}, "Trusted devices need device registration", None),
]


@pytest.mark.parametrize(("change", "message", "kept"), BAD_INPUT)
def test_bad_input_on_create_is_a_clear_400_on_the_form_and_stores_nothing(
    sso: Sso, admin: requests.Session, change: dict[str, str], message: str, kept: str | None
) -> None:
    before = stored_policies()
    form = {name: value for name, value in {"name": "office", **FULL_FORM, **change}.items() if value}

    refused = submit(sso, admin, "/admin/adaptive", form, page="/admin/adaptive/new")

    assert refused.status_code == 400, text_of(refused)[:2000]
    page = text_of(refused)
    assert message in page and 'role="alert"' in refused.text
    # The form comes back with what the admin typed.
    assert 'value="office"' in page and ">New adaptive policy</h1>" in page
    if kept is not None:
        assert kept in page
    assert stored_policies() == before


@pytest.mark.parametrize(("change", "message", "kept"), BAD_INPUT)
def test_bad_input_on_edit_is_a_clear_400_and_keeps_the_stored_policy(
    sso: Sso, admin: requests.Session, change: dict[str, str], message: str, kept: str | None
) -> None:
    create_office(sso, admin)
    before = stored_policies()
    form = {name: value for name, value in {**FULL_FORM, **change}.items() if value}

    refused = submit(sso, admin, "/admin/adaptive/office", form, page="/admin/adaptive/office")

    assert refused.status_code == 400, text_of(refused)[:2000]
    page = text_of(refused)
    assert message in page and 'role="alert"' in refused.text
    if kept is not None:
        assert kept in page
    assert stored_policies() == before
    assert policies.get_policy("office") == EXPECTED


def test_a_bad_policy_name_is_refused(sso: Sso, admin: requests.Session) -> None:
    before = stored_policies()
    refused = submit(sso, admin, "/admin/adaptive", {"name": "Office Only!", **DEFAULT_FORM})
    assert refused.status_code == 400
    assert "A policy name is 1-63 lower-case letters, digits and hyphens" in text_of(refused)
    assert 'value="Office Only!"' in text_of(refused)
    assert stored_policies() == before


def test_a_missing_select_is_refused_by_its_label(sso: Sso, admin: requests.Session) -> None:
    form = {name: value for name, value in {"name": "office", **FULL_FORM}.items() if name != "on_exceed"}
    refused = submit(sso, admin, "/admin/adaptive", form)
    assert refused.status_code == 400
    assert "Action if the number of devices is exceeded is required." in text_of(refused)
    assert stored_policies() == {"items": [], "events": []}


def test_an_unknown_policy_is_a_clear_404(sso: Sso, admin: requests.Session) -> None:
    page = sso.get(admin, "/admin/adaptive/nothing")
    assert page.status_code == 404 and "There is no adaptive policy 'nothing'." in text_of(page)
    assert submit(sso, admin, "/admin/adaptive/nothing", DEFAULT_FORM).status_code == 404
    assert submit(sso, admin, "/admin/adaptive/nothing/delete", {}).status_code == 404
    assert stored_policies() == {"items": [], "events": []}


# ---------------------------------------------------------------- who may use the console


def test_the_policy_pages_are_for_administrators_only(sso: Sso, admin: requests.Session) -> None:
    create_office(sso, admin)
    accounts.create_user(accounts.NewUser("bob", password=PASSWORD))
    bob = sso.browser()
    assert sso.sign_in(bob, "bob").status_code == 303
    token = csrf_token(sso.get(bob, "/me").text)
    before = stored_policies()

    for path in ("/admin/adaptive", "/admin/adaptive/new", "/admin/adaptive/office"):
        page = sso.get(bob, path)
        assert page.status_code == 403, path
        assert "This page is for administrators." in page.text
    for path, data in (
        ("/admin/adaptive", {"name": "evil", **DEFAULT_FORM}),
        ("/admin/adaptive/office", DEFAULT_FORM),
        ("/admin/adaptive/office/delete", {}),
    ):
        assert sso.post(bob, path, {"csrf_token": token, **data}).status_code == 403, path

    assert stored_policies() == before
    assert sso.get(sso.browser(), "/admin/adaptive").headers["Location"] == "/login?next=%2Fadmin%2Fadaptive"


def test_a_post_without_a_valid_csrf_token_is_refused_and_stores_nothing(
    sso: Sso, admin: requests.Session
) -> None:
    create_office(sso, admin)
    before = stored_policies()
    for path, data in (
        ("/admin/adaptive", {"name": "evil", **DEFAULT_FORM}),
        ("/admin/adaptive/office", DEFAULT_FORM),
        ("/admin/adaptive/office/delete", {}),
    ):
        missing = sso.post(admin, path, data)
        forged = sso.post(admin, path, {**data, "csrf_token": "not-the-session-token"})
        assert missing.status_code == forged.status_code == 403, path
        assert "did not come from this site" in missing.text
    assert stored_policies() == before


def test_every_policy_page_labels_its_inputs_and_posts_carry_the_csrf_token(
    sso: Sso, admin: requests.Session
) -> None:
    create_office(sso, admin)
    token = csrf_token(sso.get(admin, "/admin").text)
    for path in ("/admin/adaptive", "/admin/adaptive/new", "/admin/adaptive/office"):
        response = sso.get(admin, path)
        assert response.status_code == 200, path
        document = lxml.html.fromstring(response.text)
        labelled = {label.get("for") for label in document.iter("label")}
        for control in document.xpath("//input[not(@type='hidden')] | //select | //textarea"):
            assert control.get("id") in labelled, f"{path}: {lxml.html.tostring(control)!r} has no label"
        for form in document.xpath("//form"):
            assert form.get("method") == "post", path
            assert form.xpath("input[@name='csrf_token']/@value") == [token], path
        for table in document.xpath("//table"):
            assert table.xpath(".//th[@scope='col']"), path
    edit = lxml.html.fromstring(sso.get(admin, "/admin/adaptive/office").text)
    labels = {" ".join(label.text_content().split()) for label in edit.iter("label")}
    assert {
        "Allow list",
        "Deny list",
        "Action outside the allow list",
        "Allow users to register devices",
        "Number of devices allowed",
        "Action if the number of devices is exceeded",
        "Send e-mail alerts to users if the number of device registrations exceeds the allowed count",
        "Also alert this address",
        "Action for behaviour change (new device or network)",
        "E-mail users about a sign-in from a new device or network",
        "Days a device may stay trusted (0: off)",
    } <= labels
