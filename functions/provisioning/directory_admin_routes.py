"""The admin console's user stores: /admin/directories (list, create, edit, delete, the
four tests of a directory and "import now").

Like the rest of the admin console, every route starts with ``guard.require_admin`` and reads
its form through ``web.read_form`` (CSRF, S16). ``console`` (beside this module) turns the
form into ``DirectorySettings``, which validate themselves: bad input gets the form back
with the sentence and what the admin typed (never the bind password), and nothing is
written (S26). Saves, deletions, tests and imports are audit events (S25). A test answers
with its page directly (it changes nothing); a save, a deletion and an import redirect to a
page with a fixed notice (Post/Redirect/Get). "Import now" only records the request: API
Gateway ends a request after 29 seconds, longer than a big directory's import, so the next
tick of the scheduled imports runs it and the page shows its counts afterwards.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from functions.provisioning import console
from functions.provisioning.settings import ProvisioningSettings
from idp_core import aws, web
from idp_core.audit import AuditContext
from idp_core.directories import scheduling, store
from idp_core.directories.schedule import TICK_SECONDS
from idp_core.directories.settings import MAX_DISPLAY_NAME, MAX_FILTER, SWITCHES
from idp_core.directories.store import MAX_BIND_PASSWORD_CHARS
from idp_core.resolver import APIGatewayRouter, Response

if TYPE_CHECKING:
    from idp_core.directories.client import TestResult

router = APIGatewayRouter()

MAX_NAME_CHARS = 63
MAX_DN_CHARS = 1024
MAX_ATTRIBUTE_CHARS = 128
MAX_LIST_CHARS = 4096
MAX_CERTIFICATE_CHARS = 12 * 1024
MAX_USERNAME_CHARS = 256
# Notices are chosen by a fixed key in the query string, so a crafted link cannot make the
# console show text of the attacker's choosing.
NOTICES = {
    "directory-created": "The directory was saved. Test its settings with the buttons below.",
    "directory-saved": "The directory's settings were saved.",
    "directory-deleted": "The directory was deleted. The users and groups it imported were kept.",
    "entry-cleared": "The entry was cleared.",
    "import-requested": (
        f"Import requested: it starts within {TICK_SECONDS // 60} minutes, at the next scheduled check; "
        "this page shows its counts when it has run."
    ),
}
_CHECKBOX = 8
DIRECTORY_FIELDS = {
    "display_name": web.Field("Display name", MAX_DISPLAY_NAME, required=False),
    "kind": web.Field("Directory type", 16, required=False),
    "urls": web.Field("Server URLs", MAX_LIST_CHARS, required=False),
    "start_tls": web.Field("Use StartTLS", _CHECKBOX, required=False),
    "ca_cert_pem": web.Field("CA certificate", MAX_CERTIFICATE_CHARS, required=False),
    "verify_certificates": web.Field("Verify server certificates", _CHECKBOX, required=False),
    "bind_dn": web.Field("Bind DN", MAX_DN_CHARS, required=False),
    "bind_password": web.Field("Bind password", MAX_BIND_PASSWORD_CHARS, required=False),
    "bases": web.Field("Search bases", MAX_LIST_CHARS, required=False),
    "user_filter": web.Field("User search filter", 32, required=False),
    "custom_filter": web.Field("Custom search filter", MAX_FILTER, required=False),
    **{
        console.MAP_PREFIX + field: web.Field(label, MAX_ATTRIBUTE_CHARS, required=False)
        for field, label in console.ATTRIBUTE_LABELS.items()
    },
    "group_lookup": web.Field("Look up groups by", 16, required=False),
    "group_base": web.Field("Group search base", MAX_DN_CHARS, required=False),
    "group_member_attribute": web.Field("Group member attribute", MAX_ATTRIBUTE_CHARS, required=False),
    **{switch: web.Field(console.SWITCH_LABELS[switch], _CHECKBOX, required=False) for switch in SWITCHES},
    "schedule": web.Field("Import schedule", 256, required=False),
}
NEW_DIRECTORY_FIELDS = {"name": web.Field("Identifier", MAX_NAME_CHARS, required=False), **DIRECTORY_FIELDS}
TEST_FIELDS = {
    "username": web.Field("Username to test", MAX_USERNAME_CHARS, required=False),
    "password": web.Field("Password to test", MAX_BIND_PASSWORD_CHARS, required=False),
}
IMPORT_FIELDS = {"full": web.Field("Full import", _CHECKBOX, required=False)}
ENTRY_FIELDS = {"entry_id": web.Field("Entry", store.MAX_ENTRY_ID_CHARS)}


# ---------------------------------------------------------------- helpers


def _admin() -> tuple[web.WebRequest, web.SignedIn]:
    # The admin checks (a recent second factor, so the second-factor rules and methods) load
    # with the first console page: most cold starts of this function are the import
    # schedule's ticks, which never need them.
    from idp_core import guard

    req = web.request()
    return req, guard.require_admin(req)


def _actor(req: web.WebRequest, signed_in: web.SignedIn) -> AuditContext:
    return req.audit_context(signed_in.user.username)


def _done(req: web.WebRequest, path: str, notice: str) -> Response[str]:
    return web.redirect(req, path, query={"notice": notice})


def _form_context(values: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    return {
        "directory": values,
        "creating": creating,
        "kinds": list(console.KIND_LABELS.items()),
        "filters": console.FILTER_CHOICES,
        "custom_filter": console.CUSTOM_FILTER,
        "group_lookups": list(console.GROUP_LOOKUP_LABELS.items()),
        "attribute_labels": console.ATTRIBUTE_LABELS,
        "default_attributes": console.default_attributes(),
        "switches": [
            (switch, console.SWITCH_LABELS[switch], console.SWITCH_HELP[switch])
            for switch in console.OPTION_SWITCHES
        ],
        "cleartext_switch": (
            console.CLEARTEXT_SWITCH,
            console.SWITCH_LABELS[console.CLEARTEXT_SWITCH],
            console.SWITCH_HELP[console.CLEARTEXT_SWITCH],
        ),
        "connection": None,
        "unencrypted": False,
        "allowed_cleartext": False,
        "last_run": None,
        "pending": None,
        "running_since": None,
        "last_failure": None,
        "entries": [],
        "test": None,
        "test_username": "",
    }


def _directory_context(row: console.DirectoryRow, values: dict[str, Any] | None = None) -> dict[str, Any]:
    context = _form_context(values or console.form_values(row.settings), creating=False)
    context.update(
        connection=row.settings.connection_security,
        unencrypted=not row.settings.encrypted,
        allowed_cleartext=row.settings.allow_cleartext,
        last_run=row.last_run,
        pending=row.pending,
        running_since=row.running_since,
        last_failure=row.last_failure,
        entries=row.entries,
        tick_minutes=TICK_SECONDS // 60,
    )
    return context


def _show_on_error(req: web.WebRequest, context: dict[str, Any]) -> None:
    """The page the error mapping renders (with the message) if the rest of the route fails."""
    req.error_page = ("admin/directory.html", {"notice": None, **context})


def _page(req: web.WebRequest, template: str, **context: Any) -> Response[str]:
    notice = NOTICES.get(req.query.get("notice", ""))
    return web.render(req, f"admin/{template}", notice=notice, **context)


# ---------------------------------------------------------------- the list


@router.get("/admin/directories")
def directories_page() -> Response[str]:
    req, _ = _admin()
    return _page(
        req,
        "directories.html",
        rows=console.directory_rows(req.clock),
        kinds=console.KIND_LABELS,
    )


# ---------------------------------------------------------------- create


@router.get("/admin/directories/new")
def new_directory_page() -> Response[str]:
    req, _ = _admin()
    return _page(req, "directory.html", **_form_context(console.new_form_values(), creating=True))


@router.post("/admin/directories")
def create_directory() -> Response[str]:
    req, signed_in = _admin()
    _show_on_error(req, _form_context(console.new_form_values(), creating=True))
    form = web.read_form(req, signed_in.session, NEW_DIRECTORY_FIELDS)
    _show_on_error(req, _form_context(console.typed_values(form), creating=True))
    saved = console.save_from_form(
        form.get("name", ""),
        form,
        create=True,
        kms=aws.client("kms"),
        key_id=ProvisioningSettings.of(req.settings).data_key_id,
        context=_actor(req, signed_in),
        clock=req.clock,
    )
    return _done(req, f"/admin/directories/{saved.name}", "directory-created")


# ---------------------------------------------------------------- edit, delete


def _stored(req: web.WebRequest, name: str) -> console.DirectoryRow:
    """The directory the page is about (404 when there is none); a refused post shows it again."""
    row = console.directory_row(name, req.clock)
    _show_on_error(req, _directory_context(row))
    return row


@router.get("/admin/directories/<name>")
def directory_page(name: str) -> Response[str]:
    req, _ = _admin()
    return _page(req, "directory.html", **_directory_context(console.directory_row(name, req.clock)))


@router.post("/admin/directories/<name>")
def save_directory(name: str) -> Response[str]:
    req, signed_in = _admin()
    row = _stored(req, name)
    form = web.read_form(req, signed_in.session, DIRECTORY_FIELDS)
    _show_on_error(req, _directory_context(row, console.typed_values(form, row.settings.name)))
    console.save_from_form(
        row.settings.name,
        form,
        create=False,
        kms=aws.client("kms"),
        key_id=ProvisioningSettings.of(req.settings).data_key_id,
        context=_actor(req, signed_in),
        clock=req.clock,
    )
    return _done(req, f"/admin/directories/{row.settings.name}", "directory-saved")


@router.post("/admin/directories/<name>/delete")
def delete_directory(name: str) -> Response[str]:
    req, signed_in = _admin()
    row = _stored(req, name)
    web.read_form(req, signed_in.session, {})
    store.delete_directory(row.settings.name, context=_actor(req, signed_in), clock=req.clock)
    return _done(req, "/admin/directories", "directory-deleted")


# ---------------------------------------------------------------- tests and imports


@router.post("/admin/directories/<name>/test/<test>")
def test_directory(name: str, test: str) -> Response[str]:
    req, signed_in = _admin()
    row = _stored(req, name)
    form = web.read_form(req, signed_in.session, TEST_FIELDS)
    username = form.get("username", "")
    # A failed test shows the reason on the page with the username typed, never the password.
    _show_on_error(
        req, {**_directory_context(row), "test": {"name": test, "result": None}, "test_username": username}
    )
    result: TestResult = console.run_test(
        row.settings.name,
        test,
        kms=aws.client("kms"),
        username=username,
        password=form.get("password"),
        context=_actor(req, signed_in),
        clock=req.clock,
    )
    context = _directory_context(row)
    context.update(test={"name": test, "result": result}, test_username=username)
    return web.render(req, "admin/directory.html", notice=result.message, **context)


@router.post("/admin/directories/<name>/import")
def import_directory(name: str) -> Response[str]:
    req, signed_in = _admin()
    row = _stored(req, name)
    form = web.read_form(req, signed_in.session, IMPORT_FIELDS)
    scheduling.request_import(
        row.settings.name, full=bool(form.get("full")), context=_actor(req, signed_in), clock=req.clock
    )
    return _done(req, f"/admin/directories/{row.settings.name}", "import-requested")


@router.post("/admin/directories/<name>/entries/clear")
def clear_entry(name: str) -> Response[str]:
    req, signed_in = _admin()
    row = _stored(req, name)
    form = web.read_form(req, signed_in.session, ENTRY_FIELDS)
    store.clear_entry(row.settings.name, form["entry_id"], context=_actor(req, signed_in), clock=req.clock)
    return _done(req, f"/admin/directories/{row.settings.name}", "entry-cleared")
