"""Forgot password (issue 15 point 2): an e-mailed single-use link (a 256-bit token stored
hashed, 15 minutes, limited per user and per address, the same answer for every name, S5),
then the user's second factor if they have one, then a new password (S4); every session
ends, a notice follows, and it is audited."""

from __future__ import annotations

import hashlib
import html
import secrets
import threading
import time
from typing import Any

import ldap3
import pytest

from idp_core import accounts, password_reset
from idp_core.directories.settings import DirectorySettings
from idp_core.errors import BadRequest
from idp_core.models import AuditEvent, RateCounter, Transaction, User
from idp_core.scope import Browser, RequestScope
from tests.helpers.adaptive import browser_at
from tests.helpers.ldap_directory import (
    SERVICE_PASSWORD,
    add_service_account,
    save_directory,
    store_directory,
)
from tests.helpers.mfa import alert, emails_to, give_totp, location_path, submit_code, totp_code
from tests.helpers.password_reset import (
    FORGOT,
    NEW_PASSWORD,
    ask_for_link,
    follow_link,
    last_link,
    set_password,
)
from tests.helpers.sso import PASSWORD, Sso, csrf_token, is_signed_in, signed_in
from tests.support.slapd import Slapd, Subtree

pytestmark = pytest.mark.sso_setup("password_only")

ALICE_EMAIL = "alice@example.com"
NEW = "a brand new passphrase 42"


@pytest.fixture
def alice(sso: Sso) -> User:
    return accounts.create_user(
        accounts.NewUser("alice", password=PASSWORD, email=ALICE_EMAIL), clock=sso.clock
    )


def events(event_type: str) -> list[AuditEvent]:
    return sorted((e for e in AuditEvent.scan() if e.type == event_type), key=lambda e: float(e.at))


def test_a_user_without_a_second_factor_resets_their_password(sso: Sso, alice: User) -> None:
    elsewhere = signed_in(sso, "alice")
    browser = sso.browser()
    before = len(emails_to(ALICE_EMAIL))  # moto's SES keeps the mails of earlier tests
    asked = ask_for_link(sso, browser, "Alice")
    assert asked.status_code == 200 and "we sent an e-mail" in asked.text
    [mail] = emails_to(ALICE_EMAIL)[before:]
    assert mail.subject == "Reset your password" and "within 15 minutes" in mail.body
    token = last_link(ALICE_EMAIL)
    assert len(token) >= 43  # 32 random bytes, URL-safe base64
    # Only the token's SHA-256 is stored.
    [item] = [t for t in Transaction.scan() if t.username == "alice"]
    assert item.id_hash == "reset:" + hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(item.attribute_values)

    followed = follow_link(sso, browser, token)
    assert followed.status_code == 303 and location_path(followed) == NEW_PASSWORD
    # The half-way session reaches nothing but the new password page.
    assert location_path(sso.get(browser, "/me")) == NEW_PASSWORD
    done = set_password(sso, browser, NEW)
    assert done.status_code == 200 and "Your password was changed" in done.text

    assert sso.sign_in(sso.browser(), "alice", PASSWORD).status_code == 401
    assert sso.sign_in(sso.browser(), "alice", NEW).status_code == 303
    assert not is_signed_in(sso, elsewhere) and not is_signed_in(sso, browser)
    assert emails_to(ALICE_EMAIL)[-1].subject == "Your password was reset"
    assert [e.outcome for e in events("password.reset_requested")] == ["success"]
    assert [e.subject for e in events("password.reset_link_used")] == ["alice"]
    [reset] = events("password.reset")
    assert reset.details is not None and reset.details.as_dict() == {"where": "local", "sessions_ended": "2"}


def test_the_login_page_links_to_the_form(sso: Sso) -> None:
    page = sso.get(sso.browser(), "/login")
    assert f'href="{FORGOT}">Forgot password?</a>' in page.text


def test_attack_the_link_does_not_skip_the_second_factor(sso: Sso, alice: User) -> None:
    secret = give_totp(sso, "alice")
    browser = sso.browser()
    ask_for_link(sso, browser, "alice")
    followed = follow_link(sso, browser, last_link(ALICE_EMAIL))
    assert followed.status_code == 303 and location_path(followed) == "/mfa"
    # Neither the page nor a post sets a password before the factor is proven.
    assert location_path(sso.get(browser, NEW_PASSWORD)) == "/mfa"
    session = browser.cookies.get("idp_session")
    forced = sso.post(browser, NEW_PASSWORD, {"csrf_token": "x", "new_password": NEW, "repeat_password": NEW})
    assert forced.status_code == 303 and location_path(forced) == "/mfa"
    assert sso.sign_in(sso.browser(), "alice", NEW).status_code == 401
    assert browser.cookies.get("idp_session") == session
    # The factor proven, the session still owes the password and reaches only its page.
    verified = submit_code(sso, browser, "/mfa?next=" + NEW_PASSWORD, totp_code(secret, sso.clock))
    assert verified.status_code == 303 and location_path(verified) == NEW_PASSWORD
    assert location_path(sso.get(browser, "/me")) == NEW_PASSWORD
    assert set_password(sso, browser, NEW).status_code == 200
    assert sso.sign_in(sso.browser(), "alice", NEW).status_code == 303


def test_attack_a_replayed_link_is_refused(sso: Sso, alice: User) -> None:
    ask_for_link(sso, sso.browser(), "alice")
    token = last_link(ALICE_EMAIL)
    assert follow_link(sso, sso.browser(), token).status_code == 303
    replay = sso.browser()
    again = follow_link(sso, replay, token)
    assert again.status_code == 400 and "it was used already, has expired" in html.unescape(again.text)
    assert "idp_session" not in replay.cookies


def test_attack_a_guessed_or_expired_link_gets_the_same_refusal(sso: Sso, alice: User) -> None:
    guessed = follow_link(sso, sso.browser(), secrets.token_urlsafe(32))
    ask_for_link(sso, sso.browser(), "alice")
    token = last_link(ALICE_EMAIL)
    sso.clock.advance(15 * 60 + 1)
    expired = follow_link(sso, sso.browser(), token)
    assert guessed.status_code == expired.status_code == 400
    assert alert(html.unescape(guessed.text)) == alert(html.unescape(expired.text))
    # The expired link is spent too: it does not come back when the clock is wrong.
    sso.clock.advance(-(15 * 60 + 1))
    assert follow_link(sso, sso.browser(), token).status_code == 400
    # Every refusal is audited, with the user when the link named one.
    refusals = events("password.reset_link_used")
    assert {e.outcome for e in refusals} == {"failure"}
    assert sorted((e.subject or "", e.details["reason"] if e.details else "") for e in refusals) == [
        ("", "unknown or used link"),
        ("", "unknown or used link"),
        ("alice", "expired link"),
    ]


def test_attack_a_link_sets_only_its_own_users_password(sso: Sso, alice: User) -> None:
    accounts.create_user(accounts.NewUser("bob", password=PASSWORD, email="bob@example.com"), clock=sso.clock)
    browser = signed_in(sso, "bob")  # bob, signed in, follows alice's link he got hold of
    ask_for_link(sso, sso.browser(), "alice")
    token = last_link(ALICE_EMAIL)
    page = sso.get(browser, "/login/reset?token=" + token)
    followed = sso.post(
        browser, "/login/reset", {"csrf_token": csrf_token(page.text), "token": token, "username": "bob"}
    )
    assert followed.status_code == 303
    assert not is_signed_in(sso, browser)  # his own session was replaced, not extended
    set_password(sso, browser, NEW)
    assert sso.sign_in(sso.browser(), "bob", PASSWORD).status_code == 303
    assert sso.sign_in(sso.browser(), "alice", NEW).status_code == 303


def test_attack_two_uses_of_one_link_at_once_give_one_session(
    sso: Sso, alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    ask_for_link(sso, sso.browser(), "alice")
    token = last_link(ALICE_EMAIL)
    # Both uses read the stored link before either spends it: the worst interleaving.
    both_read = threading.Barrier(2, timeout=10)
    read = Transaction.get

    def get_then_wait(*args: Any, **kwargs: Any) -> Transaction:
        item = read(*args, **kwargs)
        both_read.wait()
        return item

    monkeypatch.setattr(password_reset.Transaction, "get", get_then_wait)
    scope = RequestScope(settings=sso.settings, browser=Browser(source_ip="198.51.100.7"), clock=sso.clock)
    outcomes: list[str] = []

    def use() -> None:
        try:
            password_reset.redeem_link(token, scope)
            outcomes.append("session")
        except BadRequest:
            outcomes.append("refused")

    threads = [threading.Thread(target=use) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["refused", "session"]


def test_an_e_mail_address_finds_its_one_user(sso: Sso, alice: User) -> None:
    before = len(emails_to(ALICE_EMAIL))
    asked = ask_for_link(sso, sso.browser(), ALICE_EMAIL)
    assert asked.status_code == 200
    assert len(emails_to(ALICE_EMAIL)) == before + 1
    assert [t.username for t in Transaction.scan()] == ["alice"]
    # An address two users share names neither (each can give their username), and says so to nobody.
    accounts.create_user(accounts.NewUser("alice2", password=PASSWORD, email=ALICE_EMAIL), clock=sso.clock)
    shared = ask_for_link(sso, sso.browser(), ALICE_EMAIL)
    assert shared.text == asked.text
    assert len(emails_to(ALICE_EMAIL)) == before + 1
    unknown = ask_for_link(sso, sso.browser(), "nobody@example.com")
    assert unknown.text == asked.text


def test_attack_an_unknown_name_gets_the_same_answer_and_leaves_no_record(sso: Sso, alice: User) -> None:
    browser = sso.browser()
    known = ask_for_link(sso, browser, "alice")
    unknown = ask_for_link(sso, browser, "mallory")
    too_long = ask_for_link(sso, browser, "m" * 200)
    assert known.status_code == unknown.status_code == too_long.status_code == 200
    assert known.text == unknown.text == too_long.text
    assert [t.username for t in Transaction.scan()] == ["alice"]
    assert not [c for c in RateCounter.scan() if "mallory" in c.key]


def test_attack_an_unknown_name_takes_as_long_as_a_known_one(sso: Sso, alice: User) -> None:
    # Storing and e-mailing a link is work an unknown name does not cause: both answers wait
    # for the same floor, so the time does not tell them apart either.
    for name in ("alice", "mallory"):
        started = time.monotonic()
        assert ask_for_link(sso, sso.browser(), name).status_code == 200
        assert time.monotonic() - started >= password_reset.MIN_ANSWER_SECONDS


def test_attack_the_links_of_one_user_are_limited_whatever_the_address(sso: Sso, alice: User) -> None:
    before = len(emails_to(ALICE_EMAIL))
    answers = [ask_for_link(sso, browser_at(f"127.0.0.{n}"), "alice") for n in range(2, 6)]
    # The fourth within the hour gets the same answer and no e-mail.
    assert {answer.status_code for answer in answers} == {200}
    assert len(emails_to(ALICE_EMAIL)) - before == password_reset.PER_USER_PER_HOUR
    assert sorted(e.outcome for e in events("password.reset_requested")) == ["refused", *["success"] * 3]
    sso.clock.advance(3600)
    ask_for_link(sso, sso.browser(), "alice")
    assert len(emails_to(ALICE_EMAIL)) - before == password_reset.PER_USER_PER_HOUR + 1


def test_attack_one_address_is_limited_whatever_the_names(sso: Sso) -> None:
    browser = browser_at("127.0.0.9")
    for n in range(password_reset.PER_ADDRESS_PER_HOUR):
        assert ask_for_link(sso, browser, f"nobody{n}").status_code == 200
    refused = ask_for_link(sso, browser, "nobody-else")
    assert refused.status_code == 429
    assert "Too many password reset requests came from your address" in html.unescape(refused.text)
    assert ask_for_link(sso, browser_at("127.0.0.10"), "nobody-else").status_code == 200


def test_a_new_password_follows_the_rules_and_a_refused_one_changes_nothing(sso: Sso, alice: User) -> None:
    browser = sso.browser()
    ask_for_link(sso, browser, "alice")
    follow_link(sso, browser, last_link(ALICE_EMAIL))
    short = set_password(sso, browser, "short")
    assert short.status_code == 400 and "at least 8 characters" in alert(short.text)
    different = set_password(sso, browser, NEW, repeat=NEW + "!")
    assert different.status_code == 400 and "not the same" in alert(different.text)
    assert sso.sign_in(sso.browser(), "alice", PASSWORD).status_code == 303
    assert set_password(sso, browser, NEW).status_code == 200


def test_a_link_session_older_than_the_link_sets_nothing(sso: Sso, alice: User) -> None:
    browser = sso.browser()
    ask_for_link(sso, browser, "alice")
    follow_link(sso, browser, last_link(ALICE_EMAIL))
    page = sso.get(browser, NEW_PASSWORD)
    sso.clock.advance(15 * 60 + 1)
    late = sso.post(
        browser,
        NEW_PASSWORD,
        {"csrf_token": csrf_token(page.text), "new_password": NEW, "repeat_password": NEW},
    )
    assert late.status_code == 403
    assert sso.sign_in(sso.browser(), "alice", PASSWORD).status_code == 303


def test_bad_input_gets_a_sentence(sso: Sso) -> None:
    browser = sso.browser()
    too_long = sso.get(browser, "/login/reset?token=" + "x" * 500)
    assert too_long.status_code == 400
    page = sso.get(browser, "/login/reset")
    missing = sso.post(browser, "/login/reset", {"csrf_token": csrf_token(page.text)})
    assert missing.status_code == 400
    no_session = sso.get(sso.browser(), NEW_PASSWORD)
    assert no_session.status_code == 403 and "password reset e-mail" in html.unescape(no_session.text)


# ---------------------------------------------------------------- directory users


@pytest.fixture
def carol(sso: Sso, slapd: Slapd, ldap_tree: Subtree) -> User:
    """carol, a user of the directory corp (activated), with no local password."""
    add_service_account(ldap_tree)
    return accounts.create_user(
        accounts.NewUser("carol", email="carol@example.com", source="ldap:corp"), clock=sso.clock
    )


def test_attack_a_directory_user_without_write_back_cannot_set_a_password_here(
    sso: Sso, slapd: Slapd, ldap_tree: Subtree, carol: User
) -> None:
    save_directory(sso, slapd, ldap_tree, "corp", "Corp LDAP", activate=True)
    before = len(emails_to("carol@example.com"))
    ask_for_link(sso, sso.browser(), "carol")
    [mail] = emails_to("carol@example.com")[before:]
    assert "managed by Corp LDAP" in mail.body and "/login/reset" not in mail.body
    assert list(Transaction.scan()) == []
    # A link made all the same (say, before the directory changed) sets nothing here.
    token = password_reset._store_link(carol, sso.clock)
    browser = sso.browser()
    follow_link(sso, browser, token)
    page = sso.get(browser, NEW_PASSWORD)
    assert "Your password is managed by Corp LDAP; change it there." in html.unescape(page.text)
    refused = sso.post(
        browser,
        NEW_PASSWORD,
        {"csrf_token": csrf_token(page.text), "new_password": NEW, "repeat_password": NEW},
    )
    assert refused.status_code == 403
    assert User.get("carol").password_hash is None and events("password.reset") == []


def _directory_takes(slapd: Slapd, dn: str, password: str) -> bool:
    """Whether slapd itself takes ``password`` for ``dn``, asked directly (not through the IdP)."""
    conn = ldap3.Connection(ldap3.Server(slapd.url, connect_timeout=2), user=dn, password=password)
    try:
        return bool(conn.bind())
    finally:
        conn.unbind()


def test_with_write_back_the_new_password_goes_to_the_directory(
    sso: Sso, slapd: Slapd, ldap_tree: Subtree, carol: User
) -> None:
    # Given a directory that takes passwords from here, through a service account that may
    # reset them (a user who forgot theirs cannot bind as themselves to change it),
    dn = ldap_tree.add_user("carol", "carols old password", mail="carol@example.com")
    ldap_tree.add_user("password-admin", SERVICE_PASSWORD, parent=ldap_tree.dn)
    store_directory(
        sso,
        DirectorySettings(
            name="corp",
            display_name="Corp LDAP",
            kind="openldap",
            urls=(slapd.url,),
            bind_dn=f"uid=password-admin,{ldap_tree.dn}",
            bases=(ldap_tree.people,),
            allow_cleartext=True,
            activate=True,
            allow_password_change=True,
        ),
    )
    browser = sso.browser()
    ask_for_link(sso, browser, "carol")
    follow_link(sso, browser, last_link("carol@example.com"))
    assert "saved in Corp LDAP" in sso.get(browser, NEW_PASSWORD).text
    done = set_password(sso, browser, NEW)
    assert done.status_code == 200, done.text[:500]
    # then the directory has it, and nothing is stored here.
    assert _directory_takes(slapd, dn, NEW) and not _directory_takes(slapd, dn, "carols old password")
    assert User.get("carol").password_hash is None
    [reset] = events("password.reset")
    assert reset.details is not None and reset.details["where"] == "ldap:corp"
