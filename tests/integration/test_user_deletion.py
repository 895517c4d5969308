"""Deleting a user removes everything that could act as them (S15, issue 11 point 4): their
sessions, devices, second factors, backup codes and pending one-time codes, and frees their
hardware tokens, so a user later created under the same name starts with nothing."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from idp_core import account_deletion, accounts, sessions
from idp_core.clock import FakeClock
from idp_core.config import SessionPolicy
from idp_core.errors import BadRequest, Conflict, NotFound
from idp_core.mfa import WrongCode, backup_codes, factors, flow, tokens, totp
from idp_core.models import AuditEvent, Factor, OathToken, Session, Transaction, User
from tests.helpers.scope import scope_at

PASSWORD = "correct horse battery staple"
TOKEN_CSV = f"TK0001,{base64.b32encode(b'T' * 20).decode()},totp,6,30\n"


def _alice_with_everything(kms: Any, key_id: str, clock: FakeClock) -> dict[str, Any]:
    """alice with an authenticator app, backup codes, a hardware token, a pending SMS factor
    with a code sent in a live session, and that session."""
    accounts.create_user(accounts.NewUser("alice", password=PASSWORD), clock=clock)
    enrolment = totp.start_enrolment("alice", "Phone", kms=kms, key_id=key_id, issuer="Tests", clock=clock)
    factors.activate_factor(enrolment.factor, clock)
    codes = backup_codes.generate("alice", clock=clock)
    tokens.import_csv(TOKEN_CSV, kms=kms, key_id=key_id, clock=clock)
    tokens.assign("TK0001", "alice", kms=kms, key_id=key_id, clock=clock)
    sms = flow.start_contact_factor("alice", "sms", "+447400123456", clock=clock)
    issued = sessions.start_session(sessions.NewSession("alice", factors=["password"]), scope_at(clock))
    flow.open_transaction(issued.session, sms, purpose="enrol", clock=clock)
    return {"codes": codes, "session_token": issued.token}


def _belongings(username: str) -> dict[str, int]:
    return {
        "factors": len(list(Factor.query(username))),
        "transactions": len([t for t in Transaction.scan() if t.username == username]),
        "sessions": len(list(Session.by_user.query(username))),
        "tokens": len([t for t in OathToken.scan() if t.assigned_to == username]),
    }


def test_attack_a_user_recreated_under_a_deleted_name_gets_none_of_the_old_factors(
    tables, kms, key_id, clock
):
    # Given alice with every kind of factor, a session and a code waiting in a transaction,
    old = _alice_with_everything(kms, key_id, clock)
    assert _belongings("alice") == {"factors": 4, "transactions": 1, "sessions": 1, "tokens": 1}
    # when an admin deletes her and someone creates "alice" again,
    account_deletion.delete_user("alice", clock=clock)
    accounts.create_user(accounts.NewUser("alice", password="another long passphrase"), clock=clock)
    # then the new alice has no factor, code, session or token of the old one.
    assert factors.list_factors("alice") == []
    assert _belongings("alice") == {"factors": 0, "transactions": 0, "sessions": 0, "tokens": 0}
    with pytest.raises(WrongCode):
        backup_codes.verify("alice", old["codes"][0], clock=clock)
    assert sessions.find_session(old["session_token"], policy=SessionPolicy(), clock=clock) is None
    # The token is free for someone else, with nothing of alice's left on it.
    accounts.create_user(accounts.NewUser("bob"), clock=clock)
    tokens.assign("TK0001", "bob", kms=kms, key_id=key_id, clock=clock)
    assert OathToken.get("TK0001").assigned_to == "bob"


def test_deleting_a_user_is_audited_with_what_was_removed(tables, kms, key_id, clock):
    _alice_with_everything(kms, key_id, clock)
    account_deletion.delete_user("alice", clock=clock)
    assert accounts.find_user("alice") is None
    [event] = [e for e in AuditEvent.scan() if e.type == "user.deleted"]
    assert (event.subject, event.outcome) == ("alice", "success")
    assert event.details is not None and event.details.as_dict() == {
        "sessions": "1",
        "transactions": "1",
        "factors": "4",
        "tokens_freed": "1",
        "devices": "0",
    }


class _Interrupted(RuntimeError):
    pass


def _interrupt(*args: object, **kwargs: object) -> None:
    raise _Interrupted("DynamoDB went away")


def test_attack_a_deletion_that_fails_half_way_leaves_no_usable_account_and_deleting_again_finishes(
    tables, kms, key_id, clock, monkeypatch
):
    old = _alice_with_everything(kms, key_id, clock)

    # Given a deletion that fails after the sessions and codes are gone but before the factors,
    with monkeypatch.context() as patch:
        patch.setattr(account_deletion, "_remove_factors", _interrupt)
        with pytest.raises(_Interrupted):
            account_deletion.delete_user("alice", clock=clock)

    # then alice is still there, marked, disabled (sign-in refuses her) and signed out; no one
    # can take her name and inherit what is left, and no admin can re-enable her half-deleted.
    half = User.get("alice", consistent_read=True)
    assert half.disabled and half.deleting_since is not None
    assert sessions.find_session(old["session_token"], policy=SessionPolicy(), clock=clock) is None
    with pytest.raises(Conflict):
        accounts.create_user(accounts.NewUser("alice", password="another long passphrase"), clock=clock)
    with pytest.raises(BadRequest, match="being deleted"):
        accounts.set_user_disabled("alice", False, clock=clock)
    assert _belongings("alice")["factors"] == 4

    # When the admin deletes her again, the job is finished.
    account_deletion.delete_user("alice", clock=clock)
    assert accounts.find_user("alice") is None
    assert _belongings("alice") == {"factors": 0, "transactions": 0, "sessions": 0, "tokens": 0}


def test_leftovers_of_a_user_deleted_before_deletion_cleaned_up_are_removed_by_deleting_again(
    tables, kms, key_id, clock
):
    # Given the items an older version left behind when it deleted only the user item,
    _alice_with_everything(kms, key_id, clock)
    User("alice").delete()
    # deleting the name removes them (and says so), and a name with nothing left is not found.
    account_deletion.delete_user("alice", clock=clock)
    assert _belongings("alice") == {"factors": 0, "transactions": 0, "sessions": 0, "tokens": 0}
    [event] = [e for e in AuditEvent.scan() if e.type == "user.deleted"]
    assert event.details is not None and event.details["leftovers_only"] == "True"
    with pytest.raises(NotFound):
        account_deletion.delete_user("alice", clock=clock)


def test_deleting_a_user_leaves_other_users_alone(tables, kms, key_id, clock):
    _alice_with_everything(kms, key_id, clock)
    accounts.create_user(accounts.NewUser("bob", password=PASSWORD), clock=clock)
    bob_totp = totp.start_enrolment("bob", "Phone", kms=kms, key_id=key_id, issuer="Tests", clock=clock)
    factors.activate_factor(bob_totp.factor, clock)
    bob_session = sessions.start_session(sessions.NewSession("bob", factors=["password"]), scope_at(clock))
    account_deletion.delete_user("alice", clock=clock)
    assert [f.kind for f in factors.list_factors("bob")] == ["totp"]
    assert sessions.find_session(bob_session.token, policy=SessionPolicy(), clock=clock) is not None


def test_the_console_shows_an_unfinished_deletion_and_deleting_again_finishes_it(
    tables, kms, key_id, clock, monkeypatch
):
    from tests.helpers.mfa import give_totp, password_only, prove_second_factor
    from tests.helpers.sso import csrf_token, running_sso

    with running_sso(tables, clock) as sso:
        password_only(clock)
        accounts.create_user(accounts.NewUser("root", password=PASSWORD, is_admin=True), clock=clock)
        secret = give_totp(sso, "root")
        admin = sso.browser()
        assert sso.sign_in(admin, "root", PASSWORD).status_code == 303
        prove_second_factor(sso, admin, secret)
        _alice_with_everything(kms, key_id, clock)
        with monkeypatch.context() as patch:
            patch.setattr(account_deletion, "_remove_factors", _interrupt)
            with pytest.raises(_Interrupted):
                account_deletion.delete_user("alice", clock=clock)

        page = sso.get(admin, "/admin/users/alice")
        assert "Being deleted since" in page.text and "delete the user again below" in page.text
        assert ">Enable user</button>" not in page.text
        refused = sso.post(admin, "/admin/users/alice/enable", {"csrf_token": csrf_token(page.text)})
        assert refused.status_code == 400 and "is being deleted" in refused.text
        deleted = sso.post(
            admin, "/admin/users/alice/delete", {"csrf_token": csrf_token(page.text), "confirm": "on"}
        )
        assert deleted.status_code == 303, deleted.text[:500]
        assert accounts.find_user("alice") is None
        assert _belongings("alice") == {"factors": 0, "transactions": 0, "sessions": 0, "tokens": 0}
