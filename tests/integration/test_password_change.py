"""A signed-in user changes their own password at /me/password, through the sso function.

A local user's new password is hashed here; a directory user's goes to the real slapd with
the RFC 3062 Password Modify operation, bound as the user, and works there at once. Either
way the current password is checked (a wrong one counts in the lockout, S1), the new one
meets the policy (S4), the user's other sessions end and their devices' trust ends, and
the change is audited (S25). A refused change changes nothing (S26)."""

from __future__ import annotations

import html
from typing import Any

import boto3
import ldap3
import pytest
import requests

from idp_core import accounts, lockout
from idp_core.directories import store
from idp_core.directories.settings import DirectorySettings
from idp_core.models import AuditEvent, User
from tests.helpers.mfa import alert, path_of
from tests.helpers.sso import PASSWORD, Sso, csrf_token
from tests.support.slapd import Slapd, Subtree

NEW_PASSWORD = "a brand new passphrase 42"
SERVICE_PASSWORD = "service-secret"
DIRECTORY_PASSWORD = "alice-Directory-1"
PAGE = "/me/password"
NOT_REPEATED = "The two new passwords are not the same; type the new password twice."


pytestmark = pytest.mark.sso_setup("password_only")


def signed_in(sso: Sso, username: str, password: str = PASSWORD) -> requests.Session:
    browser = sso.browser()
    assert sso.sign_in(browser, username, password).status_code == 303
    return browser


def change(
    sso: Sso,
    browser: requests.Session,
    current: str,
    new: str = NEW_PASSWORD,
    repeated: str | None = None,
) -> requests.Response:
    """Post the form the way the browser does: with the CSRF token of the page."""
    page = sso.get(browser, PAGE)
    assert page.status_code == 200, page.text[:500]
    form = {
        "csrf_token": csrf_token(page.text),
        "current_password": current,
        "new_password": new,
        "repeat_password": new if repeated is None else repeated,
    }
    return sso.post(browser, PAGE, form)


def events(event_type: str) -> list[AuditEvent]:
    return [event for event in AuditEvent.scan() if event.type == event_type]


def is_signed_in(sso: Sso, browser: requests.Session) -> bool:
    answer = sso.get(browser, "/me")
    assert answer.status_code in (200, 303)
    return answer.status_code == 200


# ---------------------------------------------------------------- local users


def test_the_page_offers_the_form_with_labelled_fields(sso: Sso) -> None:
    accounts.create_user(accounts.NewUser("amy", password=PASSWORD), clock=sso.clock)
    browser = signed_in(sso, "amy")
    assert 'href="/me/password"' in sso.get(browser, "/me").text.replace(sso.url, "")
    page = html.unescape(sso.get(browser, PAGE).text)
    for label in ("Current password", "New password", "Repeat the new password"):
        assert f">{label}</label>" in page
    assert ">Change password</button>" in page


def test_a_signed_out_visitor_is_sent_to_sign_in(sso: Sso) -> None:
    answer = sso.get(sso.browser(), PAGE)
    assert answer.status_code == 303 and path_of(answer).startswith("/login?next=")


def test_a_local_user_changes_the_password_and_the_other_sessions_end(sso: Sso) -> None:
    accounts.create_user(accounts.NewUser("amy", password=PASSWORD), clock=sso.clock)
    browser, elsewhere = signed_in(sso, "amy"), signed_in(sso, "amy")

    changed = change(sso, browser, PASSWORD)

    assert changed.status_code == 303 and path_of(changed) == f"{PAGE}?notice=changed"
    assert "Your password was changed." in sso.get(browser, path_of(changed)).text
    assert is_signed_in(sso, browser) and not is_signed_in(sso, elsewhere)
    assert sso.sign_in(sso.browser(), "amy", PASSWORD).status_code == 401
    assert sso.sign_in(sso.browser(), "amy", NEW_PASSWORD).status_code == 303
    assert int(User.get("amy").trust_epoch) == 1  # the devices' trust ended
    (event,) = events("password.changed")
    assert (event.outcome, event.actor, event.subject) == ("success", "amy", "amy")
    assert event.details.as_dict() == {"where": "local", "other_sessions_ended": "1"}


def test_a_wrong_current_password_is_refused_and_counted_like_a_sign_in(sso: Sso) -> None:
    accounts.create_user(accounts.NewUser("amy", password=PASSWORD), clock=sso.clock)
    browser = signed_in(sso, "amy")
    before = User.get("amy").password_hash

    refused = change(sso, browser, "not the password at all")

    assert refused.status_code == 400
    assert alert(html.unescape(refused.text)) == (
        "The current password is not correct, so your password was not changed."
    )
    amy = User.get("amy")
    assert amy.password_hash == before and int(amy.fail_password) == 1
    assert [event.details.as_dict()["factor"] for event in events("auth.failure")] == ["password"]
    assert events("password.changed") == [] and is_signed_in(sso, browser)


@pytest.mark.parametrize(
    ("new", "repeated", "message"),
    [
        ("short1", None, "The password must be at least 8 characters long."),
        ("password123", None, "This password is too common; choose a less predictable one."),
        (
            NEW_PASSWORD,
            NEW_PASSWORD + "!",
            "The two new passwords are not the same; type the new password twice.",
        ),
        (PASSWORD, None, "The new password must differ from the current one."),
    ],
    ids=["too-short", "blocklisted", "not-repeated", "unchanged"],
)
def test_an_unfit_new_password_is_refused_and_nothing_changes(
    sso: Sso, new: str, repeated: str | None, message: str
) -> None:
    accounts.create_user(accounts.NewUser("amy", password=PASSWORD), clock=sso.clock)
    browser, elsewhere = signed_in(sso, "amy"), signed_in(sso, "amy")
    before = User.get("amy").attribute_values

    refused = change(sso, browser, PASSWORD, new, repeated)

    assert refused.status_code == 400 and alert(html.unescape(refused.text)) == message
    assert User.get("amy").attribute_values == before  # no hash, no counter, no trust epoch
    assert is_signed_in(sso, elsewhere) and events("password.changed") == []


def test_a_post_without_the_csrf_token_is_refused(sso: Sso) -> None:
    accounts.create_user(accounts.NewUser("amy", password=PASSWORD), clock=sso.clock)
    browser = signed_in(sso, "amy")
    form = {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "repeat_password": NEW_PASSWORD}
    assert sso.post(browser, PAGE, form).status_code == 403
    assert sso.sign_in(sso.browser(), "amy", PASSWORD).status_code == 303


def test_a_locked_account_tests_no_current_password(sso: Sso) -> None:
    accounts.create_user(accounts.NewUser("amy", password=PASSWORD), clock=sso.clock)
    browser = signed_in(sso, "amy")
    User.get("amy").update(actions=[User.locked.set(True)])

    refused = change(sso, browser, PASSWORD)

    assert refused.status_code == 403 and "locked" in alert(html.unescape(refused.text))
    assert int(User.get("amy").fail_password or 0) == 0 and events("password.changed") == []


# ---------------------------------------------------------------- directory users


def save_corp(sso: Sso, server: Slapd, tree: Subtree, **switches: bool) -> DirectorySettings:
    """Store the directory "Corp LDAP" over ``tree`` of ``server`` with the given switches."""
    settings = DirectorySettings(
        name="corp",
        display_name="Corp LDAP",
        kind="openldap",
        urls=(server.url,),
        allow_cleartext=True,  # slapd speaks plain LDAP on 127.0.0.1 (S30)
        bind_dn=f"uid=svc,{tree.dn}",
        bases=(tree.people,),
        **switches,
    )
    store.save_directory(
        settings,
        create=not [d for d in store.list_directories() if d.name == "corp"],
        bind_password=SERVICE_PASSWORD,
        kms=boto3.client("kms"),
        key_id=sso.settings.require_data_key(),
        clock=sso.clock,
    )
    store.forget_cached_directories()
    return settings


def add_people(tree: Subtree) -> None:
    tree.add_user("svc", SERVICE_PASSWORD, parent=tree.dn)
    tree.add_user("alice", DIRECTORY_PASSWORD, mail="alice@corp.example")


@pytest.fixture
def corp(sso: Sso, slapd: Slapd, ldap_tree: Subtree) -> Any:
    """A directory with alice in it; returns a saver that stores it with the given switches."""
    add_people(ldap_tree)

    def save(**switches: bool) -> DirectorySettings:
        return save_corp(sso, slapd, ldap_tree, **switches)

    return save


def directory_accepts(slapd: Slapd, tree: Subtree, password: str) -> bool:
    """Whether slapd itself takes ``password`` for alice, asked directly (not through the IdP)."""
    conn = ldap3.Connection(
        ldap3.Server(slapd.url, connect_timeout=2),
        user=f"uid=alice,{tree.people}",
        password=password,
        receive_timeout=5,
    )
    try:
        return bool(conn.bind())
    finally:
        conn.unbind()


def test_a_directory_user_changes_the_password_in_the_directory(
    sso: Sso, corp: Any, slapd: Slapd, ldap_tree: Subtree
) -> None:
    corp(activate=True, sync_users=True, allow_password_change=True)
    browser, elsewhere = (
        signed_in(sso, "alice", DIRECTORY_PASSWORD),
        signed_in(sso, "alice", DIRECTORY_PASSWORD),
    )
    assert "saved in Corp LDAP" in sso.get(browser, PAGE).text

    changed = change(sso, browser, DIRECTORY_PASSWORD)

    assert changed.status_code == 303, changed.text[:500]
    assert directory_accepts(slapd, ldap_tree, NEW_PASSWORD)
    assert not directory_accepts(slapd, ldap_tree, DIRECTORY_PASSWORD)
    assert sso.sign_in(sso.browser(), "alice", NEW_PASSWORD).status_code == 303
    assert sso.sign_in(sso.browser(), "alice", DIRECTORY_PASSWORD).status_code == 401
    alice = User.get("alice")
    assert alice.password_hash is None and int(alice.trust_epoch) == 1  # nothing stored here
    assert is_signed_in(sso, browser) and not is_signed_in(sso, elsewhere)
    (event,) = events("password.changed")
    assert event.details.as_dict() == {"where": "ldap:corp", "other_sessions_ended": "1"}


def test_a_wrong_current_password_of_a_directory_user_is_counted_and_changes_nothing(
    sso: Sso, corp: Any, slapd: Slapd, ldap_tree: Subtree
) -> None:
    corp(activate=True, sync_users=True, allow_password_change=True)
    browser = signed_in(sso, "alice", DIRECTORY_PASSWORD)

    refused = change(sso, browser, "not-alice-password-9")

    assert refused.status_code == 400
    assert "current password is not correct" in alert(html.unescape(refused.text))
    assert int(User.get("alice").fail_password) == 1
    assert directory_accepts(slapd, ldap_tree, DIRECTORY_PASSWORD)
    assert not directory_accepts(slapd, ldap_tree, NEW_PASSWORD)


def test_a_directory_that_does_not_allow_changes_refuses_up_front(
    sso: Sso, corp: Any, slapd: Slapd, ldap_tree: Subtree
) -> None:
    corp(activate=True, sync_users=True)
    browser = signed_in(sso, "alice", DIRECTORY_PASSWORD)
    page = html.unescape(sso.get(browser, PAGE).text)
    assert "Your password is managed by Corp LDAP; change it there." in page
    assert "Current password" not in page  # no form to fill in for nothing

    refused = sso.post(
        browser,
        PAGE,
        {
            "csrf_token": csrf_token(page),
            "current_password": DIRECTORY_PASSWORD,
            "new_password": NEW_PASSWORD,
            "repeat_password": NEW_PASSWORD,
        },
    )

    assert refused.status_code == 403
    assert alert(html.unescape(refused.text)) == "Your password is managed by Corp LDAP; change it there."
    assert directory_accepts(slapd, ldap_tree, DIRECTORY_PASSWORD)
    assert int(User.get("alice").fail_password or 0) == 0 and events("password.changed") == []


def test_a_stopped_directory_gives_a_clear_error_and_changes_nothing(
    sso: Sso, corp: Any, slapd: Slapd, ldap_tree: Subtree
) -> None:
    corp(activate=True, sync_users=True, allow_password_change=True, backup_auth=True)
    signed_in(sso, "alice", DIRECTORY_PASSWORD)  # creates alice (sync users)
    # A local backup password too; a reset ends her sessions, so she signs in again after it.
    accounts.reset_password("alice", PASSWORD, clock=sso.clock)
    browser = signed_in(sso, "alice", DIRECTORY_PASSWORD)
    before = User.get("alice").attribute_values
    page = sso.get(browser, PAGE)
    slapd.stop()
    try:
        refused = sso.post(
            browser,
            PAGE,
            {
                "csrf_token": csrf_token(page.text),
                "current_password": DIRECTORY_PASSWORD,
                "new_password": NEW_PASSWORD,
                "repeat_password": NEW_PASSWORD,
            },
        )
    finally:
        slapd.start()

    assert refused.status_code == 503
    assert alert(html.unescape(refused.text)) == (
        "Corp LDAP could not be reached, so your password was not changed. Try again later."
    )
    after = User.get("alice").attribute_values
    # The attempt was reserved and, never judged, given back: only the lockout's bookkeeping moved.
    assert (after["fail_password"], after["fail_total"]) == (0, 0)
    bookkeeping = {"fail_total", "limit_password", "last_attempt_at", "last_attempt_id"}
    bookkeeping.update(f"attempt_ids_{n}" for n in range(lockout.ATTEMPT_ID_SETS))
    assert {k: v for k, v in after.items() if k not in bookkeeping} == {
        k: v for k, v in before.items() if k not in bookkeeping
    }  # the backup password is untouched
    assert directory_accepts(slapd, ldap_tree, DIRECTORY_PASSWORD)
    (event,) = events("password.changed")
    assert (event.outcome, event.details.as_dict()["reason"]) == ("failure", "Unreachable")


def test_a_directory_user_of_a_directory_that_is_not_activated_changes_the_local_password(
    sso: Sso, corp: Any, slapd: Slapd, ldap_tree: Subtree
) -> None:
    corp(activate=True, sync_users=True)
    assert sso.sign_in(sso.browser(), "alice", DIRECTORY_PASSWORD).status_code == 303
    corp(activate=False)  # sign-in now checks the local password, as for a local user
    accounts.reset_password("alice", PASSWORD, clock=sso.clock)
    browser = signed_in(sso, "alice")

    assert change(sso, browser, PASSWORD).status_code == 303

    assert sso.sign_in(sso.browser(), "alice", NEW_PASSWORD).status_code == 303
    assert directory_accepts(slapd, ldap_tree, DIRECTORY_PASSWORD)  # the directory is not touched


class PolicySlapd(Slapd):
    """A slapd whose password policy (the ppolicy overlay) wants at least 20 characters."""

    def _config(self) -> str:
        config = super()._config()
        assert "moduleload back_mdb" in config
        config = config.replace("moduleload back_mdb", "moduleload back_mdb\nmoduleload ppolicy")
        return config + f'overlay ppolicy\nppolicy_default "cn=policy,{self.base_dn}"\n'

    def __enter__(self) -> PolicySlapd:
        super().__enter__()
        try:
            self._add_policy()
        except BaseException:
            self.__exit__(None, None, None)  # no slapd is left behind
            raise
        return self

    def _add_policy(self) -> None:
        conn = self.connection()
        try:
            conn.add(
                f"cn=policy,{self.base_dn}",
                ["applicationProcess", "pwdPolicy"],
                {
                    "cn": "policy",
                    "pwdAttribute": "userPassword",
                    "pwdMinLength": "20",
                    "pwdCheckQuality": "2",
                },
            )
        finally:
            conn.unbind()


def test_the_directory_password_policy_refusal_is_shown_in_its_own_words(sso: Sso) -> None:
    with PolicySlapd() as strict, strict.subtree() as tree:
        add_people(tree)
        save_corp(sso, strict, tree, activate=True, sync_users=True, allow_password_change=True)
        browser = signed_in(sso, "alice", DIRECTORY_PASSWORD)

        refused = change(sso, browser, DIRECTORY_PASSWORD, "only 19 characters!")

        assert refused.status_code == 400
        assert alert(html.unescape(refused.text)) == (
            "The directory refused the new password: "
            "Password fails quality checking policy (constraintViolation)."
        )
        assert directory_accepts(strict, tree, DIRECTORY_PASSWORD)
        assert int(User.get("alice").trust_epoch or 0) == 0 and is_signed_in(sso, browser)
        assert change(sso, browser, DIRECTORY_PASSWORD, "twenty or more characters").status_code == 303
        assert directory_accepts(strict, tree, "twenty or more characters")
