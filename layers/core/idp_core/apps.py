"""SAML apps. An AWS app maps directory or local groups to IAM roles in its account and others."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from pynamodb.exceptions import DeleteError, PutError, UpdateError
from pynamodb.expressions.update import Action

from idp_core import audit
from idp_core.audit import AuditContext
from idp_core.clock import SYSTEM_CLOCK, Clock
from idp_core.errors import BadRequest, Conflict, NotFound
from idp_core.groups import enabled_groups, existing_groups
from idp_core.models import App, RoleMapping, User, condition_failed
from idp_core.names import canonical_app_name, canonical_group

AWS_CONSOLE_URL = "https://console.aws.amazon.com/"
AWS_SIGNIN_ACS_URL = "https://signin.aws.amazon.com/saml"
# The kind of an app that signs users in to the AWS console (saml_apps.KIND: any SAML SP).
AWS_APP_KIND = "aws"
AWS_AUDIENCE = "urn:amazon:webservices"
DEFAULT_PROVIDER_NAME = "serverless-idp"
MIN_SESSION_SECONDS = 900
MAX_SESSION_SECONDS = 43200
MAX_URL_CHARS = 1024
MAX_AUDIENCE_CHARS = 1024
MAX_DISPLAY_NAME_CHARS = 128

_ACCOUNT_ID = re.compile(r"\d{12}")
_ROLE_NAME = re.compile(r"(/[\w+=,.@-]+)*/?[\w+=,.@-]{1,64}", re.ASCII)
_ROLE_ARN = re.compile(r"arn:aws[\w-]*:iam::(\d{12}):role/((?:[\w+=,.@-]+/)*[\w+=,.@-]{1,64})", re.ASCII)
_PROVIDER_NAME = re.compile(r"[\w.-]{1,128}", re.ASCII)
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def role_arn(account_id: str, role: str) -> str:
    """A role configured as a bare name lives in the app's account."""
    return role if role.startswith("arn:") else f"arn:aws:iam::{account_id}:role/{role.lstrip('/')}"


def provider_arn(app: App) -> str:
    return provider_arn_in(str(app.account_id), app)


def provider_arn_in(account_id: str, app: App) -> str:
    """The app's IAM SAML provider in ``account_id``: every account of the app names it alike."""
    return f"arn:aws:iam::{account_id}:saml-provider/{app.provider_name}"


def account_of(app: App, mapping: RoleMapping) -> str:
    """The account of a mapping's role: its own, or the app's for a mapping that names none."""
    return str(mapping.account_id or app.account_id)


def accounts_of(app: App) -> list[str]:
    """The AWS accounts an app's roles live in, the app's own first."""
    found = [str(app.account_id)]
    for mapping in app.roles:
        if account_of(app, mapping) not in found:
            found.append(account_of(app, mapping))
    return found


def role_table(app: App) -> list[dict[str, str]]:
    """The app's mappings as the CLI and the console show them: account, role, role ARN, group."""
    return [
        {
            "account_id": account_of(app, mapping),
            "role": str(mapping.role),
            "role_arn": role_arn(account_of(app, mapping), mapping.role),
            "group": str(mapping.group),
        }
        for mapping in app.roles
    ]


def saml_trust_policy(provider_arn: str, acs_url: str) -> dict[str, Any]:
    """The trust policy a role needs for this IdP (what the AWS console wizard writes for SAML)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": provider_arn},
                "Action": ["sts:AssumeRoleWithSAML", "sts:TagSession", "sts:SetSourceIdentity"],
                "Condition": {"StringEquals": {"SAML:aud": acs_url}},
            }
        ],
    }


def _check_url(url: str, *, what: str, allow_loopback_http: bool) -> str:
    url = url.strip()
    parts = urlsplit(url)
    loopback_http = allow_loopback_http and parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS
    if len(url) > MAX_URL_CHARS or not parts.hostname or (parts.scheme != "https" and not loopback_http):
        raise BadRequest(f"The {what} must be an https URL, got {url!r}.")
    return url


def split_account(role: str) -> tuple[str | None, str]:
    """``ACCOUNT:ROLE`` names a role of another account (IAM role names and paths never contain
    ":"); a bare role name or a role ARN gives no account here (None)."""
    role = role.strip()
    if role.startswith("arn:") or ":" not in role:
        return None, role
    account, _, name = role.partition(":")
    return account.strip(), name.strip()


def _check_role(account_id: str, role: str) -> tuple[str | None, str]:
    """The mapping's own account (None: the app's) and its role, or BadRequest."""
    own_account, role = split_account(role)
    if own_account is not None and not _ACCOUNT_ID.fullmatch(own_account):
        raise BadRequest(f"An AWS account id is 12 digits, got {own_account!r} before the role {role!r}.")
    account = own_account or account_id
    arn = _ROLE_ARN.fullmatch(role)
    if arn:
        if arn.group(1) != account:
            # The SAML provider of the mapping's account would be sent beside a role of another
            # account: AWS refuses such a pair, so it is never stored.
            where = "the app's account" if own_account is None else "the mapping's account"
            raise BadRequest(
                f"The role {role!r} is not in {where} {account}; write ACCOUNT:ROLE for a role of "
                "another account."
            )
    elif not _ROLE_NAME.fullmatch(role):
        raise BadRequest(f"{role!r} is not a valid IAM role name or role ARN.")
    return own_account, role


def _check_roles(account_id: str, roles: Sequence[tuple[str, str]]) -> list[RoleMapping]:
    if not roles:
        raise BadRequest("An AWS app needs at least one role mapping (ROLE_NAME=GROUP).")
    mappings = [(*_check_role(account_id, role), group) for role, group in roles]
    existing_groups(group for _, _, group in mappings)
    return [
        RoleMapping(role=role, group=canonical_group(group), account_id=own_account)
        for own_account, role, group in mappings
    ]


def _check_session_duration(session_duration: int) -> int:
    if (
        not isinstance(session_duration, int)
        or not MIN_SESSION_SECONDS <= session_duration <= MAX_SESSION_SECONDS
    ):
        raise BadRequest(
            f"The session duration must be between {MIN_SESSION_SECONDS} and {MAX_SESSION_SECONDS} seconds."
        )
    return session_duration


@dataclass(frozen=True, kw_only=True)
class AwsAppChoices:
    """What an admin chooses for an AWS app: ``create_aws_app`` takes them all, ``update_aws_app``
    those that change (None keeps the current value); both check them with ``_validated``."""

    account_id: str | None = None
    roles: Sequence[tuple[str, str]] | None = None
    session_duration: int | None = None
    relay_state: str | None = None
    provider_name: str | None = None
    acs_url: str | None = None
    audience: str | None = None
    display_name: str | None = None


def _validated(app_name: str, choices: AwsAppChoices) -> dict[str, Any]:
    """The App attributes for ``choices``, every one checked (None: the default), or BadRequest.
    Creation and every update go through here, so an update cannot store what creation refuses."""
    account_id = (choices.account_id or "").strip()
    if not _ACCOUNT_ID.fullmatch(account_id):
        raise BadRequest(f"An AWS account id is 12 digits, got {account_id!r}.")
    provider = (choices.provider_name or DEFAULT_PROVIDER_NAME).strip()
    if not _PROVIDER_NAME.fullmatch(provider):
        raise BadRequest(f"{provider!r} is not a valid IAM SAML provider name.")
    audience = (choices.audience or AWS_AUDIENCE).strip()
    if not audience or len(audience) > MAX_AUDIENCE_CHARS:
        raise BadRequest(f"The audience must be 1-{MAX_AUDIENCE_CHARS} characters.")
    display = display_name_of(choices.display_name, app_name)
    session_duration = 3600 if choices.session_duration is None else choices.session_duration
    return {
        "display_name": display,
        "account_id": account_id,
        "provider_name": provider,
        "roles": _check_roles(account_id, choices.roles or ()),
        "session_duration": _check_session_duration(session_duration),
        "relay_state": _check_url(
            choices.relay_state or AWS_CONSOLE_URL, what="relay state", allow_loopback_http=False
        ),
        "acs_url": _check_url(
            choices.acs_url or AWS_SIGNIN_ACS_URL, what="ACS URL", allow_loopback_http=True
        ),
        "audience": audience,
    }


def create_aws_app(
    name: str,
    choices: AwsAppChoices,
    *,
    mfa_required: bool = True,
    context: AuditContext | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> App:
    """Register an AWS account as an app; it requires a second factor unless told otherwise.
    ``choices`` need an account id and roles; the others left None take their defaults."""
    app_name = canonical_app_name(name)
    app = App(
        app_name,
        kind=AWS_APP_KIND,
        **_validated(app_name, choices),
        mfa_required=bool(mfa_required),
        created_at=clock.now(),
    )
    save_new_app(app)
    audit.record(
        audit.EventType.APP_CREATED,
        "success",
        context=context,
        subject=app_name,
        details={
            "account_id": app.account_id,
            "accounts": len(accounts_of(app)),
            "roles": len(app.roles),
            "mfa_required": app.mfa_required,
        },
        clock=clock,
    )
    return app


def _role_pairs(mappings: Sequence[RoleMapping]) -> list[tuple[str, str]]:
    """Mappings as an admin writes them: (ROLE or ACCOUNT:ROLE, GROUP)."""
    return [
        (
            f"{mapping.account_id}:{mapping.role}" if mapping.account_id else str(mapping.role),
            str(mapping.group),
        )
        for mapping in mappings
    ]


def _shown(attribute: str, value: Any) -> str:
    """A changed value as the audit event shows it: role mappings as ROLE=GROUP."""
    if attribute == "roles":
        return ";".join(f"{role}={group}" for role, group in _role_pairs(value))
    return str(value)


def update_aws_app(
    name: str,
    changes: AwsAppChoices,
    *,
    disabled: bool | None = None,
    context: AuditContext | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> App:
    """Change an app's settings: the fields of ``changes`` that are not None, and ``disabled``.

    The app as it would be is checked whole, exactly as creation checks it (a new account id
    must suit the role ARNs kept, a role must name a group that exists), before anything is
    written; the write is conditional on the app still existing. The ``app.updated`` event
    names each changed setting with its old and new value; a change of status is its own
    ``app.disabled`` or ``app.enabled`` event, whichever way it is made (``set_app_disabled``).
    Nothing changed: nothing written, no event.
    """
    app = get_app(name)
    given = {field: value for field, value in vars(changes).items() if value is not None}
    if app.kind != AWS_APP_KIND:
        # AWS settings on another kind of app would be stored beside its own and confuse both.
        if given:
            raise BadRequest(
                f"The app {app.name!r} is a SAML app: change its settings with `idp app update-saml` "
                "or on its console page."
            )
        wanted: dict[str, Any] = {}
    else:
        current = AwsAppChoices(
            account_id=app.account_id,
            roles=_role_pairs(app.roles),
            session_duration=int(app.session_duration),
            relay_state=app.relay_state,
            provider_name=app.provider_name,
            acs_url=app.acs_url,
            audience=app.audience,
            display_name=app.display_name,
        )
        wanted = _validated(app.name, replace(current, **given))
    if disabled is not None:
        wanted["disabled"] = bool(disabled)
    changed = {
        attribute: value
        for attribute, value in wanted.items()
        if _shown(attribute, value) != _shown(attribute, getattr(app, attribute))
    }
    if not changed:
        return app
    # Shown before the write, which refreshes ``app`` with the new values.
    shown = {
        attribute: (_shown(attribute, getattr(app, attribute)), _shown(attribute, value))
        for attribute, value in changed.items()
    }
    update_app(app, [getattr(App, attribute).set(value) for attribute, value in changed.items()])
    settings = {attribute: values for attribute, values in shown.items() if attribute != "disabled"}
    if settings:
        audit.record_changes(
            audit.EventType.APP_UPDATED, settings, subject=app.name, context=context, clock=clock
        )
    if "disabled" in changed:
        audit.record(
            audit.EventType.APP_DISABLED if changed["disabled"] else audit.EventType.APP_ENABLED,
            "success",
            context=context,
            subject=app.name,
            clock=clock,
        )
    return app


def display_name_of(raw: str | None, app_name: str) -> str:
    display = (raw or app_name).strip()
    if len(display) > MAX_DISPLAY_NAME_CHARS or not display.isprintable():
        raise BadRequest(f"An app's display name is at most {MAX_DISPLAY_NAME_CHARS} printable characters.")
    return display


def save_new_app(app: App) -> None:
    """Store a new app; Conflict when its name is taken."""
    try:
        app.save(condition=App.name.does_not_exist())
    except PutError as exc:
        if condition_failed(exc):
            raise Conflict(f"The app {app.name!r} already exists.") from exc
        raise


def update_app(app: App, actions: list[Action]) -> None:
    """Apply ``actions`` to an app that still exists; NotFound when it was deleted meanwhile."""
    try:
        app.update(actions=actions, condition=App.name.exists())
    except UpdateError as exc:
        if condition_failed(exc):
            raise NotFound(f"There is no app {app.name!r}.") from exc
        raise


def find_app(name: str) -> App | None:
    try:
        return App.get(canonical_app_name(name))
    except App.DoesNotExist:
        return None


def get_app(name: str) -> App:
    app = find_app(name)
    if app is None:
        raise NotFound(f"There is no app {name!r}.")
    return app


def list_apps() -> list[App]:
    return sorted(App.scan(), key=lambda app: app.name)


def set_app_disabled(
    name: str, disabled: bool, *, context: AuditContext | None = None, clock: Clock = SYSTEM_CLOCK
) -> App:
    """Disable or enable an app of any kind (the console's buttons): the very change, and
    event, of ``idp app update --disable|--enable``, so the audit trail tells one change one
    way whoever made it."""
    return update_aws_app(name, AwsAppChoices(), disabled=disabled, context=context, clock=clock)


def delete_app(name: str, *, context: AuditContext | None = None, clock: Clock = SYSTEM_CLOCK) -> None:
    app = get_app(name)
    try:
        app.delete(condition=App.name.exists())
    except DeleteError as exc:
        if condition_failed(exc):
            raise NotFound(f"There is no app {name!r}.") from exc
        raise
    audit.record(audit.EventType.APP_DELETED, "success", context=context, subject=app.name, clock=clock)


def role_pairs_for_user(app: App, groups: set[str]) -> list[tuple[str, str]]:
    """(role ARN, SAML provider ARN of the role's account) for each role the app gives to
    members of ``groups``, across its accounts, in the app's order, without repeats."""
    pairs: list[tuple[str, str]] = []
    for mapping in app.roles:
        account = account_of(app, mapping)
        pair = (role_arn(account, mapping.role), provider_arn_in(account, app))
        if mapping.group in groups and pair not in pairs:
            pairs.append(pair)
    return pairs


def roles_for_user(app: App, groups: set[str]) -> list[str]:
    """Role ARNs the app gives to members of ``groups``, in the app's order, without repeats."""
    return [role for role, _ in role_pairs_for_user(app, groups)]


def apps_for_user(user: User) -> list[App]:
    """Enabled apps in which the user has at least one role."""
    if user.disabled:
        return []
    groups = enabled_groups(user)
    return [app for app in list_apps() if not app.disabled and roles_for_user(app, groups)]
