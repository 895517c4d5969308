"""The user store page's four test buttons against a real slapd: each succeeds, or fails with
a precise reason, and each is an audit event without the password (S25); an unknown test or
directory is a clear 404."""

from __future__ import annotations

import lxml.html
import pytest
import requests

from idp_core.models import AuditEvent
from tests.helpers.console import submit, text_of
from tests.helpers.directory_console import (
    ALICE_PASSWORD,
    SERVICE_PASSWORD,
    alert_of,
    audit_events,
    create_corp,
    details_text,
    form_for,
    notice_of,
    stored,
)
from tests.helpers.sso import Sso
from tests.support.slapd import Slapd, Subtree, closed_port

pytestmark = pytest.mark.sso_setup("password_only")


def run_test(
    sso: Sso, admin: requests.Session, test: str, **fields: str
) -> tuple[requests.Response, AuditEvent]:
    """Press one test button of corp's page; returns the page and the test's audit event."""
    sso.clock.advance(1)  # each test's event is the latest one
    response = submit(
        sso, admin, f"/admin/directories/corp/test/{test}", fields, page="/admin/directories/corp"
    )
    event = audit_events("directory.test")[-1]
    assert event.actor == "root" and event.subject == "corp" and event.details["test"] == test
    # The password typed for a test is never shown again nor recorded.
    for secret in (ALICE_PASSWORD, "wrong-Password-1", SERVICE_PASSWORD):
        assert secret not in response.text and secret not in details_text(event)
    return response, event


def test_each_test_button_answers_with_a_clear_success(
    sso: Sso,
    admin: requests.Session,
    slapd: Slapd,
    ldap_tree: Subtree,
    people: dict[str, str],
) -> None:
    create_corp(sso, admin, slapd, ldap_tree)
    before = stored()

    connected, event = run_test(sso, admin, "connection")
    assert connected.status_code == 200 and event.outcome == "success"
    assert notice_of(connected) == f"Connected to {slapd.url}."

    bound, event = run_test(sso, admin, "bind")
    assert bound.status_code == 200 and event.outcome == "success"
    assert notice_of(bound) == f"Bound to {slapd.url} as uid=svc,{ldap_tree.dn}."

    signed_in, event = run_test(sso, admin, "configuration", username="alice", password=ALICE_PASSWORD)
    assert signed_in.status_code == 200 and event.outcome == "success"
    assert notice_of(signed_in) == f"alice signed in as {people['alice']}."
    assert event.details["username"] == "alice"
    (typed,) = lxml.html.fromstring(signed_in.text).xpath("//input[@id='configuration-username']/@value")
    assert typed == "alice"

    mapped, event = run_test(sso, admin, "mapping", username="alice")
    assert mapped.status_code == 200 and event.outcome == "success"
    assert notice_of(mapped) == f"alice ({people['alice']}) maps to all fields; groups: engineers."
    (table,) = lxml.html.fromstring(mapped.text).xpath("//table[caption='Mapped attributes']")
    rows = [[" ".join(cell.text_content().split()) for cell in row] for row in table.xpath("./tbody/tr")]
    assert rows == [
        ["Username", "uid", "alice"],
        ["E-mail", "mail", "alice@corp.example"],
        ["Phone", "telephoneNumber", "+15555550100"],
        ["First name", "givenName", "Alice"],
        ["Last name", "sn", "Example"],
        ["Display name", "cn", "Alice Example"],
        ["Group membership", "memberOf", "engineers"],
    ]
    # Tests change nothing but the audit trail.
    assert stored() == before


FAILING_TESTS = [
    pytest.param(
        {"bind_password": "wrong-Password-1"},
        "bind",
        {},
        "The directory refused the bind DN uid=svc,{tree} or its password (invalidCredentials).",
        id="wrong bind password",
    ),
    pytest.param(
        {},
        "configuration",
        {"username": "alice", "password": "wrong-Password-1"},
        "The directory refused the password of {alice}.",
        id="wrong user password",
    ),
    pytest.param(
        {},
        "configuration",
        {"username": "alice", "password": ""},
        "An empty password is never sent to the directory.",
        id="empty user password",
    ),
    pytest.param(
        {},
        "mapping",
        {"username": "carol"},
        "No entry under ou=people,{tree} matches (uid=carol).",
        id="no such user",
    ),
    pytest.param(
        {},
        "mapping",
        {"username": "admin)(|(uid=*"},
        r"No entry under ou=people,{tree} matches (uid=admin\29\28|\28uid=\2a).",
        id="filter injection matches no one",
    ),
    pytest.param(
        {"user_filter": "custom", "custom_filter": "(|(uid={username})(sn=Builder)(sn=Example))"},
        "mapping",
        {"username": "alice"},
        "2 entries match (|(uid=alice)(sn=Builder)(sn=Example)) ({alice}, {bob}); exactly one must.",
        id="several users",
    ),
    pytest.param(
        {},
        "mapping",
        {"username": "bob"},
        "The entry {bob} has no attribute for: phone (telephoneNumber), first name (givenName).",
        id="attribute missing",
    ),
]


@pytest.mark.parametrize(("settings", "test", "fields", "reason"), FAILING_TESTS)
def test_each_test_button_fails_with_the_precise_reason(
    sso: Sso,
    admin: requests.Session,
    slapd: Slapd,
    ldap_tree: Subtree,
    people: dict[str, str],
    settings: dict[str, str],
    test: str,
    fields: dict[str, str],
    reason: str,
) -> None:
    create_corp(sso, admin, slapd, ldap_tree, **settings)
    before = stored()

    failed, event = run_test(sso, admin, test, **fields)

    expected = reason.format(tree=ldap_tree.dn, alice=people["alice"], bob=people["bob"])
    assert failed.status_code == 400, text_of(failed)[:3000]
    assert alert_of(failed) == expected
    assert event.outcome == "failure" and event.details["reason"] == expected
    if "username" in fields:
        assert event.details["username"] == fields["username"]
        # The page keeps the username typed into the test's form.
        field_id = f"{test}-username"
        (typed,) = lxml.html.fromstring(failed.text).xpath(f"//input[@id='{field_id}']/@value")
        assert typed == fields["username"]
    assert ">User store corp</h1>" in failed.text
    assert stored() == before


def test_an_unreachable_server_fails_the_test_with_the_reason(
    sso: Sso, admin: requests.Session, slapd: Slapd, ldap_tree: Subtree
) -> None:
    port = closed_port()
    create_corp(sso, admin, slapd, ldap_tree, urls=f"ldap://127.0.0.1:{port}")
    before = stored()

    for test in ("connection", "bind"):
        failed, event = run_test(sso, admin, test)
        assert failed.status_code == 400
        reason = alert_of(failed)
        assert reason.startswith(f"No directory server could be reached (ldap://127.0.0.1:{port}: "), reason
        assert event.outcome == "failure" and event.details["reason"] == reason
    assert stored() == before


def test_an_unknown_test_or_directory_is_a_clear_404(
    sso: Sso, admin: requests.Session, slapd: Slapd, ldap_tree: Subtree
) -> None:
    create_corp(sso, admin, slapd, ldap_tree)
    unknown = submit(
        sso, admin, "/admin/directories/corp/test/everything", {}, page="/admin/directories/corp"
    )
    assert unknown.status_code == 404
    assert "There is no directory test 'everything'" in alert_of(unknown)
    assert submit(sso, admin, "/admin/directories/nothing/test/bind", {}).status_code == 404
    assert submit(sso, admin, "/admin/directories/nothing/import", {}).status_code == 404
    assert (
        submit(sso, admin, "/admin/directories/nothing", form_for(slapd, ldap_tree, name="-")).status_code
        == 404
    )
    assert submit(sso, admin, "/admin/directories/nothing/delete", {}).status_code == 404
    assert audit_events("directory.test") == []


# ---------------------------------------------------------------- import now
