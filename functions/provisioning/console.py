"""What the admin console's user stores page needs beyond storage: the settings a form
describes, the form's values for stored settings, each directory's imports (the last run,
its failure, a pending "Import now", a run in progress), and the admin's four tests of a
directory, audited.

The form is plain text (one URL or search base per line, one text field per mapped
attribute, checkboxes for the switches); ``DirectorySettings`` validates what it describes,
so a refused form raises ``BadRequest`` with the settings' own sentence before anything is
written (S26). The bind password never appears in a form's values, a test's audit event
or a log line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from idp_core import audit
from idp_core.audit import AuditContext
from idp_core.clock import SYSTEM_CLOCK, Clock
from idp_core.directories import scheduling, store
from idp_core.directories.errors import DirectoryError
from idp_core.directories.settings import (
    AD,
    AD_ATTRIBUTES,
    GROUP_SEARCH,
    KINDS,
    LDAP,
    MEMBER_OF,
    OPENLDAP,
    OPENLDAP_ATTRIBUTES,
    SWITCHES,
    USER_FILTERS,
    AttributeMap,
    DirectorySettings,
)
from idp_core.errors import BadRequest, NotFound
from idp_core.models import Directory

if TYPE_CHECKING:
    from idp_core.directories import client
    from idp_core.directories.imports import RunCounts

KIND_LABELS = {AD: "Active Directory", OPENLDAP: "OpenLDAP", LDAP: "Other LDAP"}
# The wording of the product guide's table of options.
SWITCH_LABELS = {
    "activate": "Activate LDAP",
    "sync_users": "Sync users",
    "backup_auth": "Backup authentication",
    "allow_password_change": "Allow users to change password",
    "admin_login": "Enable administrator login",
    "show_to_users": "Show IdP to users",
    "send_configured_attributes": "Send configured attributes",
    "auto_register": "Enable user auto registration",
    "welcome_emails": "Send welcome e-mails after registration",
    "allow_cleartext": "Allow unencrypted connection",
}
SWITCH_HELP = {
    "activate": "Sign-ins check the password by binding to the directory as the user.",
    "sync_users": "A user who signs in with the directory and is not known here yet is created.",
    "backup_auth": "When the directory refuses the password or is unreachable, the local password is tried.",
    "allow_password_change": "A new password chosen on the user's page is written to the directory.",
    "admin_login": "Administrators of this console sign in with their directory password.",
    "show_to_users": "The sign-in page lets users pick this directory.",
    "send_configured_attributes": "Only the mapped attributes go into the assertions sent to apps.",
    "auto_register": "Imports create the directory's users here.",
    "welcome_emails": "Users created from the directory get a welcome e-mail.",
    "allow_cleartext": (
        "Warning: without ldaps:// or StartTLS, the service account's password and every user's "
        "password cross the network in plain text, readable by anyone who can see the traffic. "
        "Turn this on only for a network you trust completely; otherwise connections to ldap:// "
        "URLs without StartTLS are refused."
    ),
}
# Shown with the connection's security settings rather than among the other options.
CLEARTEXT_SWITCH = "allow_cleartext"
OPTION_SWITCHES = tuple(switch for switch in SWITCHES if switch != CLEARTEXT_SWITCH)
ATTRIBUTE_LABELS = {
    "username": "Username attribute",
    "email": "E-mail attribute",
    "phone": "Phone attribute",
    "first_name": "First name attribute",
    "last_name": "Last name attribute",
    "display_name": "Display name attribute",
    "groups": "Group membership attribute",
}
CUSTOM_FILTER = "custom"
# "" keeps the type's usual filter (sAMAccountName for AD, uid otherwise).
FILTER_CHOICES = ("", *USER_FILTERS, CUSTOM_FILTER)
GROUP_LOOKUP_LABELS = {
    MEMBER_OF: "The user's group membership attribute (memberOf)",
    GROUP_SEARCH: "A search of the groups under the group base",
}
TESTS = ("connection", "bind", "configuration", "mapping")
# The form's field for each mapped attribute.
MAP_PREFIX = "map_"
MAPPED_FIELDS = tuple(item.name for item in fields(AttributeMap))


@dataclass(frozen=True)
class DirectoryRow:
    settings: DirectorySettings
    last_run: RunCounts | None
    pending: scheduling.ImportRequest | None = None
    # When the run holding the directory's lock started.
    running_since: float | None = None
    last_failure: scheduling.Failure | None = None
    # Name collisions and locked entries not registered here (the directory's own page only).
    entries: tuple[store.EntryRow, ...] = ()

    @property
    def switches_on(self) -> list[str]:
        """The labels of the switches that are on, in the form's order."""
        return [SWITCH_LABELS[switch] for switch in SWITCHES if getattr(self.settings, switch)]


# ---------------------------------------------------------------- form <-> settings


def settings_from_form(name: str, form: Mapping[str, str]) -> DirectorySettings:
    """The settings the console's form describes; raises ``BadRequest`` with a sentence."""
    kind = form.get("kind", "").strip()
    if kind not in KINDS:
        raise BadRequest(f"The directory type must be one of: {', '.join(KIND_LABELS.values())}.")
    overrides = {
        field: form.get(MAP_PREFIX + field, "").strip()
        for field in MAPPED_FIELDS
        if form.get(MAP_PREFIX + field, "").strip()
    }
    return DirectorySettings(
        name=name,
        display_name=form.get("display_name", ""),
        kind=kind,
        # A URL has no spaces; a DN may, so bases are one per line.
        urls=tuple(form.get("urls", "").split()),
        bind_dn=form.get("bind_dn", ""),
        bases=tuple(form.get("bases", "").splitlines()),
        user_filter=_user_filter(form),
        # An empty field keeps the type's usual attribute, so switching the type needs no retyping.
        attribute_map=AttributeMap.for_kind(kind, overrides),
        start_tls=bool(form.get("start_tls")),
        ca_cert_pem=form.get("ca_cert_pem", "").replace("\r\n", "\n").strip() or None,
        verify_certificates=bool(form.get("verify_certificates")),
        group_lookup=form.get("group_lookup", "").strip() or MEMBER_OF,
        group_base=form.get("group_base", "").strip() or None,
        group_member_attribute=form.get("group_member_attribute", "").strip() or "member",
        schedule=form.get("schedule", "").strip() or None,
        **{switch: bool(form.get(switch)) for switch in SWITCHES},
    )


def _user_filter(form: Mapping[str, str]) -> str | None:
    choice = form.get("user_filter", "").strip()
    if choice == CUSTOM_FILTER:
        custom = form.get("custom_filter", "").strip()
        if not custom:
            raise BadRequest(
                "Type the custom search filter, with a {username} slot for the name typed at sign-in, "
                "e.g. (&(objectClass=person)(uid={username}))."
            )
        return custom
    if choice and choice not in USER_FILTERS:
        raise BadRequest(f"The user search filter is one of: {', '.join(USER_FILTERS)}, or custom.")
    return choice or None


def form_values(settings: DirectorySettings) -> dict[str, Any]:
    """The form's values for stored settings (one URL and one base per line)."""
    named = settings.user_filter in USER_FILTERS
    values: dict[str, Any] = {
        "name": settings.name,
        "display_name": settings.display_name,
        "kind": settings.kind,
        "urls": "\n".join(settings.urls),
        "start_tls": settings.start_tls,
        "ca_cert_pem": (settings.ca_cert_pem or "").strip(),
        "verify_certificates": settings.verify_certificates,
        "bind_dn": settings.bind_dn,
        "bases": "\n".join(settings.bases),
        "user_filter": settings.user_filter if named else CUSTOM_FILTER,
        "custom_filter": "" if named else settings.user_filter,
        "group_lookup": settings.group_lookup,
        "group_base": settings.group_base or "",
        "group_member_attribute": settings.group_member_attribute,
        "schedule": settings.schedule or "",
        **{switch: getattr(settings, switch) for switch in SWITCHES},
    }
    values.update({MAP_PREFIX + field: value for field, value in settings.mapping.as_dict().items()})
    return values


def save_from_form(
    name: str,
    form: Mapping[str, str],
    *,
    create: bool,
    kms: Any,
    key_id: str,
    context: AuditContext | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> DirectorySettings:
    """Store the directory the form describes. An empty bind password keeps the stored one
    on an update; a new directory needs one, since the service account binds with it."""
    settings = settings_from_form(name, form)
    password = form.get("bind_password") or None
    if create and password is None:
        raise BadRequest("The bind password of the service account is required.")
    return store.save_directory(
        settings, create=create, bind_password=password, kms=kms, key_id=key_id, context=context, clock=clock
    )


def typed_values(form: Mapping[str, str], name: str = "") -> dict[str, Any]:
    """What the admin typed, for the form shown again with the message (never the password)."""
    boxes = ("start_tls", "verify_certificates", *SWITCHES)
    texts = [
        "display_name",
        "kind",
        "urls",
        "ca_cert_pem",
        "bind_dn",
        "bases",
        "user_filter",
        "custom_filter",
        "group_lookup",
        "group_base",
        "group_member_attribute",
        "schedule",
        *(MAP_PREFIX + field for field in MAPPED_FIELDS),
    ]
    values: dict[str, Any] = {text: form.get(text, "") for text in texts}
    values.update({box: bool(form.get(box)) for box in boxes})
    values["name"] = form.get("name", name)
    return values


def new_form_values() -> dict[str, Any]:
    """The new-directory form: certificate checks on, the type's usual filter and attributes."""
    values = typed_values({})
    values.update(
        kind=OPENLDAP, verify_certificates=True, group_lookup=MEMBER_OF, group_member_attribute="member"
    )
    return values


def default_attributes() -> dict[str, dict[str, str]]:
    """Each mapped field's usual attribute per type, for the form's hints."""
    return {
        field: {"ad": AD_ATTRIBUTES[field], "ldap": OPENLDAP_ATTRIBUTES[field]} for field in MAPPED_FIELDS
    }


# ---------------------------------------------------------------- the list and the last run


def directory_rows(clock: Clock = SYSTEM_CLOCK) -> list[DirectoryRow]:
    """Every directory with the state of its imports, by name."""
    rows = [_row(item, clock.now()) for item in Directory.scan(consistent_read=True)]
    return sorted(rows, key=lambda row: row.settings.name)


def directory_row(name: str, clock: Clock = SYSTEM_CLOCK) -> DirectoryRow:
    """One directory with the state of its imports and the entries that need an admin;
    ``NotFound`` when there is none."""
    row = _row(store.get_directory(name), clock.now())
    return replace(row, entries=tuple(store.entries_needing_attention(row.settings.name, clock)))


def _row(item: Directory, now: float) -> DirectoryRow:
    # The import code and the directory client load with the console's first page or test,
    # not with the import schedule's tick, this function's usual cold start.
    from idp_core.directories.imports import RunCounts

    return DirectoryRow(
        store.settings_of(item),
        RunCounts.from_json(item.last_run) if item.last_run else None,
        pending=scheduling.pending_request(item),
        running_since=scheduling.running_since(item, now),
        last_failure=scheduling.last_failure(item),
    )


# ---------------------------------------------------------------- the admin's tests


def run_test(
    name: str,
    test: str,
    *,
    kms: Any,
    username: str | None = None,
    password: str | None = None,
    context: AuditContext | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> client.TestResult:
    """Run one of the four tests (``TESTS``) against the stored directory ``name``.

    Success and failure are audit events (``directory.test``) with the test's name, the
    username tried and, on failure, the reason; the password is never recorded. A failure
    raises the ``DirectoryError`` with its precise reason.
    """
    if test not in TESTS:
        raise NotFound(f"There is no directory test {test[:32]!r}; the tests are: {', '.join(TESTS)}.")
    item = store.get_directory(name)
    settings = store.settings_of(item)
    details: dict[str, object] = {"test": test}
    if test in ("configuration", "mapping"):
        details["username"] = (username or "").strip()[:256]
    try:
        result = _run(test, settings, item, kms=kms, username=username or "", password=password)
    except DirectoryError as exc:
        audit.record(
            audit.EventType.DIRECTORY_TEST,
            "failure",
            context=context,
            subject=settings.name,
            details={**details, "reason": exc.message[:500]},
            clock=clock,
        )
        raise
    audit.record(
        audit.EventType.DIRECTORY_TEST,
        "success",
        context=context,
        subject=settings.name,
        details=details,
        clock=clock,
    )
    return result


def _run(
    test: str, settings: DirectorySettings, item: Directory, *, kms: Any, username: str, password: str | None
) -> client.TestResult:
    from idp_core.directories import client

    if test == "connection":
        return client.test_connection(settings)
    bind_password = store.bind_password(item, kms=kms) or ""
    if test == "bind":
        return client.test_service_bind(settings, bind_password)
    if test == "configuration":
        return client.test_configuration(settings, bind_password, username, password)
    return client.test_attribute_mapping(settings, bind_password, username)
