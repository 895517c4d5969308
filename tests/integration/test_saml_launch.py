"""Launching an AWS app: roles from groups, refusals with audit events, RelayState allowlist."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from idp_core import accounts, apps
from idp_core.audit import AuditContext, recent
from idp_core.clock import FakeClock
from idp_core.config import Settings, Tables
from idp_core.errors import BadRequest, Forbidden
from idp_core.launch import Issuer, launch_aws_app
from idp_core.mfa import policy
from idp_core.models import Session, User
from idp_core.saml.aws import PASSWORD_PROTECTED_TRANSPORT, REFEDS_MFA, AssertionRuleViolation
from idp_core.saml.certificate import SigningIdentity
from idp_core.saml.xml import NAMESPACES, parse_xml
from idp_core.scope import Browser, RequestScope

ACCOUNT = "111122223333"
ISSUER = "https://idp.example.com/saml/metadata"
PROVIDER = f"arn:aws:iam::{ACCOUNT}:saml-provider/serverless-idp"
CONTEXT = AuditContext(source_ip="192.0.2.1", actor="alice")
# The launch reads no settings; the scope carries them for the logic that does.
UNREAD_SETTINGS = Settings(tables=Tables.with_prefix("unread-"), signing_key_id="unread")


@pytest.fixture
def directory(tables: Tables, clock: FakeClock) -> None:
    for group in ("developers", "readers", "retired"):
        accounts.create_group(group, clock=clock)
    accounts.set_group_disabled("retired", True, clock=clock)
    apps.create_aws_app(
        "aws-prod",
        apps.AwsAppChoices(
            account_id=ACCOUNT,
            roles=[
                ("Developers", "developers"),
                (f"arn:aws:iam::{ACCOUNT}:role/teams/ReadOnly", "readers"),
                ("Legacy", "retired"),
            ],
            session_duration=7200,
        ),
        clock=clock,
    )


def _session(user: User, clock: FakeClock, *factors: str) -> Session:
    """A session of ``user`` that proved ``factors`` (not stored: the launch only reads it)."""
    return Session(
        "id-hash",
        username=user.username,
        created_at=clock.now(),
        last_seen_at=clock.now(),
        expires_at=clock.now() + 3600,
        csrf_token="csrf",
        factors={"password", *factors},
    )


def _launch(
    user: User,
    clock: FakeClock,
    identity: SigningIdentity,
    relay_state: str | None = None,
    session: Session | None = None,
) -> Any:
    return launch_aws_app(
        user,
        apps.get_app("aws-prod"),
        session=session or _session(user, clock),
        requested_relay_state=relay_state,
        issuer=Issuer(ISSUER, lambda: identity),
        scope=RequestScope(
            UNREAD_SETTINGS, browser=Browser(source_ip=CONTEXT.source_ip), actor=CONTEXT.actor, clock=clock
        ),
    )


def _role_values(saml_response_b64: str) -> list[str]:
    root = parse_xml(base64.b64decode(saml_response_b64))
    path = "//saml:Attribute[@Name='https://aws.amazon.com/SAML/Attributes/Role']/saml:AttributeValue/text()"
    return list(root.xpath(path, namespaces=NAMESPACES))


def _events(event_type: str, clock: FakeClock) -> list[Any]:
    return [event for event in recent(clock=clock) if event.type == event_type]


def test_each_enabled_group_gives_one_role_and_disabled_groups_give_none(
    directory: None, identity: SigningIdentity, clock: FakeClock
) -> None:
    user = accounts.create_user(
        accounts.NewUser("Alice", groups=["developers", "readers", "retired"]), clock=clock
    )

    result = _launch(user, clock, identity)

    assert result.acs_url == "https://signin.aws.amazon.com/saml"
    assert result.relay_state == "https://console.aws.amazon.com/"
    assert _role_values(result.saml_response_b64) == [
        f"arn:aws:iam::{ACCOUNT}:role/Developers,{PROVIDER}",
        f"arn:aws:iam::{ACCOUNT}:role/teams/ReadOnly,{PROVIDER}",
    ]
    (issued,) = _events("saml.assertion_issued", clock)
    assert issued.subject == "alice"
    assert issued.details["roles"] == "2"
    assert "SAMLResponse" not in str(issued.details) and result.saml_response_b64[:40] not in str(
        issued.details
    )


def test_role_session_name_is_the_display_username(
    directory: None, identity: SigningIdentity, clock: FakeClock
) -> None:
    user = accounts.create_user(
        accounts.NewUser("Alice.Smith@example.com", groups=["developers"]), clock=clock
    )
    root = parse_xml(base64.b64decode(_launch(user, clock, identity).saml_response_b64))
    path = "//saml:Attribute[@Name='https://aws.amazon.com/SAML/Attributes/RoleSessionName']/saml:AttributeValue/text()"
    assert root.xpath(path, namespaces=NAMESPACES) == ["Alice.Smith@example.com"]


def test_disabled_user_is_refused_and_audited(
    directory: None, identity: SigningIdentity, clock: FakeClock
) -> None:
    accounts.create_user(accounts.NewUser("bob", groups=["developers"]), clock=clock)
    accounts.set_user_disabled("bob", True, clock=clock)

    with pytest.raises(Forbidden, match="disabled"):
        _launch(accounts.get_user("bob"), clock, identity)

    (refused,) = _events("saml.assertion_refused", clock)
    assert refused.details["rule"] == "user-disabled"


def test_disabled_app_is_refused(directory: None, identity: SigningIdentity, clock: FakeClock) -> None:
    user = accounts.create_user(accounts.NewUser("carol", groups=["developers"]), clock=clock)
    apps.set_app_disabled("aws-prod", True, clock=clock)
    with pytest.raises(Forbidden, match="is disabled"):
        _launch(user, clock, identity)


def test_user_without_a_role_is_refused(directory: None, identity: SigningIdentity, clock: FakeClock) -> None:
    user = accounts.create_user(accounts.NewUser("dave", groups=["retired"]), clock=clock)
    with pytest.raises(Forbidden, match="no role in the app"):
        _launch(user, clock, identity)
    assert _events("saml.assertion_refused", clock)[0].details["rule"] == "no-role"


def test_username_outside_the_role_session_name_charset_is_refused_naming_the_rule(
    directory: None, identity: SigningIdentity, clock: FakeClock
) -> None:
    user = accounts.create_user(accounts.NewUser("jörg", groups=["developers"]), clock=clock)
    with pytest.raises(AssertionRuleViolation, match="role session name"):
        _launch(user, clock, identity)
    assert _events("saml.assertion_refused", clock)[0].details["rule"] == "role-session-name"


def test_console_relay_state_is_accepted_and_others_refused(
    directory: None, identity: SigningIdentity, clock: FakeClock
) -> None:
    user = accounts.create_user(accounts.NewUser("erin", groups=["developers"]), clock=clock)
    deep_link = "https://us-east-1.console.aws.amazon.com/s3/home"
    assert _launch(user, clock, identity, relay_state=deep_link).relay_state == deep_link

    with pytest.raises(BadRequest, match="open redirect"):
        _launch(user, clock, identity, relay_state="https://evil.example.com/")
    assert _events("saml.assertion_refused", clock)[0].details["rule"] == "relay-state"


def _class_ref(saml_response_b64: str) -> list[str]:
    root = parse_xml(base64.b64decode(saml_response_b64))
    path = "//saml:AuthnStatement/saml:AuthnContext/saml:AuthnContextClassRef/text()"
    return list(root.xpath(path, namespaces=NAMESPACES))


@pytest.mark.parametrize(
    ("proven", "app_methods", "expected"),
    [
        ((), None, PASSWORD_PROTECTED_TRANSPORT),
        (("mfa:totp",), None, REFEDS_MFA),
        (("mfa:totp", "mfa:email"), ["email"], REFEDS_MFA),
        # A method the app does not accept proves nothing for it.
        (("mfa:email",), ["totp", "token"], PASSWORD_PROTECTED_TRANSPORT),
        # Still owed, or only the directory that checked the password: no second factor.
        (("pending:mfa", "ldap:corp"), None, PASSWORD_PROTECTED_TRANSPORT),
    ],
)
def test_the_authn_context_says_whether_the_session_proved_a_second_factor_the_app_accepts(
    directory: None,
    identity: SigningIdentity,
    clock: FakeClock,
    proven: tuple[str, ...],
    app_methods: list[str] | None,
    expected: str,
) -> None:
    user = accounts.create_user(accounts.NewUser("alice", groups=["developers"]), clock=clock)
    if app_methods is not None:
        policy.set_app_policy("aws-prod", methods=app_methods, context=None, clock=clock)
    result = _launch(user, clock, identity, session=_session(user, clock, *proven))
    assert _class_ref(result.saml_response_b64) == [expected]
