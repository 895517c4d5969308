"""The admin console of the sso function: users, groups, AWS apps and the audit trail.

Every route starts with ``guard.require_admin`` (a signed-out browser goes to the sign-in
page, a signed-in non-admin gets 403), reads a form through ``web.read_form`` (size caps,
CSRF, field caps) and calls one logic function of ``idp_core.accounts`` or
``idp_core.apps``, which validate the input and write the audit event. A POST answers
with a 303 to a page that shows a fixed notice (Post/Redirect/Get); a refused POST shows
its form again with the message and what the admin typed, except passwords.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, unquote

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from functions.sso.settings import SsoSettings
from idp_core import accounts, apps, audit, guard, lockout, saml_apps, web
from idp_core.audit import AuditContext
from idp_core.errors import BadRequest, NotFound
from idp_core.mail import Mailer
from idp_core.models import Group
from idp_core.names import MAX_GROUP_CHARS, MAX_USERNAME_CHARS
from idp_core.passwords import MAX_PASSWORD_CHARS

router = APIGatewayRouter()

ROLE_ROWS = 5
GROUP_FIELD_PREFIX = "group:"
MAX_APP_NAME_CHARS = 63
MAX_URL_CHARS = 1024
MAX_AUDIT_EVENTS = 200
AUDIT_DAYS = 7

# Notices are chosen by a fixed key in the query string, so a crafted link cannot make the
# console show text of the attacker's choosing.
NOTICES = {
    "user-created": "The user was created.",
    "user-disabled": "The user was disabled and their sessions were ended.",
    "user-enabled": "The user was enabled.",
    "password-reset": "The password was reset.",
    "groups-saved": "The user's groups were saved.",
    "admin-granted": "The user is now an administrator.",
    "admin-revoked": "The user is no longer an administrator.",
    "user-unlocked": "The user was unlocked; their failure counts are back to zero.",
    "user-deleted": "The user was deleted.",
    "group-created": "The group was created.",
    "group-disabled": "The group was disabled; it no longer grants app roles.",
    "group-enabled": "The group was enabled.",
    "app-created": "The app was created. Finish the set-up in the AWS account as shown below.",
    "app-disabled": "The app was disabled.",
    "app-enabled": "The app was enabled.",
    "app-deleted": "The app was deleted.",
    "app-updated": "The app's settings were saved.",
}

USER_FIELDS = {
    "username": web.Field("Username", MAX_USERNAME_CHARS),
    "email": web.Field("E-mail", accounts.MAX_EMAIL_CHARS, required=False),
    "display_name": web.Field("Display name", accounts.MAX_DISPLAY_NAME_CHARS, required=False),
    "password": web.Field("Initial password", MAX_PASSWORD_CHARS),
    "is_admin": web.Field("Administrator", 8, required=False),
}
GROUP_FIELDS = {
    "name": web.Field("Group name", MAX_GROUP_CHARS),
    "description": web.Field("Description", 256, required=False),
}
APP_FIELDS = {
    "name": web.Field("App name", MAX_APP_NAME_CHARS),
    "display_name": web.Field("Display name", 128, required=False),
    "account_id": web.Field("AWS account id", 64),
    "session_duration": web.Field("Session duration", 12, required=False),
    "relay_state": web.Field("Relay state", MAX_URL_CHARS, required=False),
    "provider_name": web.Field("SAML provider name", 128, required=False),
    "acs_url": web.Field("ACS URL", MAX_URL_CHARS, required=False),
    **{
        f"role_{row}": web.Field(f"IAM role (row {row})", 2048, required=False)
        for row in range(1, ROLE_ROWS + 1)
    },
    **{
        f"group_{row}": web.Field(f"Group (row {row})", MAX_GROUP_CHARS, required=False)
        for row in range(1, ROLE_ROWS + 1)
    },
}
PASSWORD_FIELDS = {"password": web.Field("New password", MAX_PASSWORD_CHARS)}
CONFIRM_FIELDS = {"confirm": web.Field("Confirmation", 8, required=False)}


# ---------------------------------------------------------------- helpers


def _admin() -> tuple[web.WebRequest, web.SignedIn]:
    req = web.request()
    return req, guard.require_admin(req)


def _actor(req: web.WebRequest, signed_in: web.SignedIn) -> AuditContext:
    return req.audit_context(signed_in.user.username)


def _page(req: web.WebRequest, template: str, *, status: int = 200, **context: Any) -> Response[str]:
    notice = NOTICES.get(req.query.get("notice", ""))
    return web.render(req, f"admin/{template}", status=status, notice=notice, **context)


def _on_error_show(req: web.WebRequest, template: str, **context: Any) -> None:
    """The page the error mapping renders (with the message) if the rest of the route fails."""
    req.error_page = (f"admin/{template}", {"notice": None, **context})


def _done(req: web.WebRequest, path: str, notice: str) -> Response[str]:
    return web.redirect(req, path, query={"notice": notice})


@contextmanager
def _form_names_missing_items() -> Iterator[None]:
    """A form that names a group that does not exist is a bad form (400), not a missing page."""
    try:
        yield
    except NotFound as exc:
        raise BadRequest(exc.message) from exc


def _user_path(username: str) -> str:
    return "/admin/users/" + quote(username, safe="")


def _path_name(raw: str) -> str:
    # Links percent-encode names; the gateway may or may not have decoded the path already,
    # and names never contain '%', so decoding once is right in both cases.
    return unquote(raw)


def _group_fields(groups: Sequence[Group]) -> dict[str, web.Field]:
    """One checkbox per existing group; a box for a group that does not exist is not read."""
    return {
        GROUP_FIELD_PREFIX + group.name: web.Field(f"Group {group.display_name}", 8, required=False)
        for group in groups
    }


def _checked_groups(form: Mapping[str, str]) -> list[str]:
    return [name[len(GROUP_FIELD_PREFIX) :] for name in form if name.startswith(GROUP_FIELD_PREFIX)]


def _role_rows(form: Mapping[str, str]) -> list[dict[str, str]]:
    return [
        {"role": form.get(f"role_{row}", ""), "group": form.get(f"group_{row}", "")}
        for row in range(1, ROLE_ROWS + 1)
    ]


def _role_pairs(rows: Sequence[Mapping[str, str]]) -> list[tuple[str, str]]:
    pairs = []
    for number, row in enumerate(rows, start=1):
        role, group = row["role"].strip(), row["group"].strip()
        if role and not group:
            raise BadRequest(f"Role mapping row {number}: choose the group that gets the role {role!r}.")
        if group and not role:
            raise BadRequest(f"Role mapping row {number}: enter the IAM role name or ARN for the group.")
        if role:
            pairs.append((role, group))
    return pairs


def _session_duration(raw: str | None) -> int:
    if raw is None:
        return 3600
    if not raw.strip().isdigit():
        raise BadRequest("The session duration must be a whole number of seconds.")
    return int(raw.strip())


# ---------------------------------------------------------------- overview


@router.get("/admin")
def overview() -> Response[str]:
    req, _ = _admin()
    return _page(
        req,
        "overview.html",
        user_count=len(accounts.list_users()),
        group_count=len(accounts.list_groups()),
        app_count=len(apps.list_apps()),
    )


# ---------------------------------------------------------------- users


@router.get("/admin/users")
def users_page() -> Response[str]:
    req, _ = _admin()
    return _page(req, "users.html", accounts=accounts.list_users(), now=req.clock.now())


def _new_user_context(form: Mapping[str, str], groups: Sequence[Group]) -> dict[str, Any]:
    return {
        "form": {name: form.get(name, "") for name in ("username", "email", "display_name")},
        "is_admin": bool(form.get("is_admin")),
        "selected": set(_checked_groups(form)),
        "groups": groups,
    }


@router.get("/admin/users/new")
def new_user_page() -> Response[str]:
    req, _ = _admin()
    return _page(req, "user_new.html", **_new_user_context({}, accounts.list_groups()))


@router.post("/admin/users")
def create_user() -> Response[str]:
    req, signed_in = _admin()
    groups = accounts.list_groups()
    _on_error_show(req, "user_new.html", **_new_user_context({}, groups))
    form = web.read_form(req, signed_in.session, {**USER_FIELDS, **_group_fields(groups)})
    _on_error_show(req, "user_new.html", **_new_user_context(form, groups))
    with _form_names_missing_items():
        user = accounts.create_user(
            form["username"],
            password=form["password"],
            email=form.get("email"),
            display_name=form.get("display_name"),
            groups=_checked_groups(form),
            is_admin=bool(form.get("is_admin")),
            context=_actor(req, signed_in),
            clock=req.clock,
        )
    return _done(req, _user_path(user.username), "user-created")


def _user_context(req: web.WebRequest, username: str) -> dict[str, Any]:
    account = accounts.get_user(username)
    return {
        "account": account,
        "groups": accounts.list_groups(),
        "locked": lockout.is_locked(account, req.clock),
    }


@router.get("/admin/users/<username>")
def user_page(username: str) -> Response[str]:
    req, _ = _admin()
    return _page(req, "user.html", **_user_context(req, _path_name(username)))


def _user_action(
    username: str, fields: Mapping[str, web.Field], *, group_boxes: bool = False
) -> tuple[web.WebRequest, web.SignedIn, str, dict[str, str]]:
    """The common start of every form on the user page: admin, the user exists, the form is valid."""
    req, signed_in = _admin()
    context = _user_context(req, _path_name(username))
    _on_error_show(req, "user.html", **context)
    if group_boxes:
        fields = {**fields, **_group_fields(context["groups"])}
    form = web.read_form(req, signed_in.session, fields)
    return req, signed_in, context["account"].username, form


@router.post("/admin/users/<username>/disable")
def disable_user(username: str) -> Response[str]:
    req, signed_in, name, _ = _user_action(username, {})
    accounts.set_user_disabled(name, True, context=_actor(req, signed_in), clock=req.clock)
    return _done(req, _user_path(name), "user-disabled")


@router.post("/admin/users/<username>/enable")
def enable_user(username: str) -> Response[str]:
    req, signed_in, name, _ = _user_action(username, {})
    accounts.set_user_disabled(name, False, context=_actor(req, signed_in), clock=req.clock)
    return _done(req, _user_path(name), "user-enabled")


@router.post("/admin/users/<username>/password")
def reset_password(username: str) -> Response[str]:
    req, signed_in, name, form = _user_action(username, PASSWORD_FIELDS)
    accounts.reset_password(
        name,
        form["password"],
        context=_actor(req, signed_in),
        clock=req.clock,
        mailer=Mailer.for_settings(SsoSettings.of(req.settings)),
    )
    return _done(req, _user_path(name), "password-reset")


@router.post("/admin/users/<username>/groups")
def set_user_groups(username: str) -> Response[str]:
    req, signed_in, name, form = _user_action(username, {}, group_boxes=True)
    with _form_names_missing_items():
        accounts.set_user_groups(name, _checked_groups(form), context=_actor(req, signed_in), clock=req.clock)
    return _done(req, _user_path(name), "groups-saved")


@router.post("/admin/users/<username>/grant-admin")
def grant_admin(username: str) -> Response[str]:
    req, signed_in, name, _ = _user_action(username, {})
    accounts.set_admin(name, True, context=_actor(req, signed_in), clock=req.clock)
    return _done(req, _user_path(name), "admin-granted")


@router.post("/admin/users/<username>/revoke-admin")
def revoke_admin(username: str) -> Response[str]:
    req, signed_in, name, _ = _user_action(username, {})
    accounts.set_admin(name, False, context=_actor(req, signed_in), clock=req.clock)
    return _done(req, _user_path(name), "admin-revoked")


@router.post("/admin/users/<username>/unlock")
def unlock_user(username: str) -> Response[str]:
    req, signed_in, name, _ = _user_action(username, {})
    accounts.unlock_user(name, context=_actor(req, signed_in), clock=req.clock)
    return _done(req, _user_path(name), "user-unlocked")


@router.post("/admin/users/<username>/delete")
def delete_user(username: str) -> Response[str]:
    req, signed_in, name, form = _user_action(username, CONFIRM_FIELDS)
    if not form.get("confirm"):
        raise BadRequest("Tick the box to confirm that the user should be deleted.")
    accounts.delete_user(name, context=_actor(req, signed_in), clock=req.clock)
    return _done(req, "/admin/users", "user-deleted")


# ---------------------------------------------------------------- groups


def _groups_context(form: Mapping[str, str] | None = None) -> dict[str, Any]:
    groups = accounts.list_groups()
    members = Counter(name for account in accounts.list_users() for name in account.groups or ())
    return {
        "groups": groups,
        "members": {group.name: members[group.name] for group in groups},
        "form": {name: (form or {}).get(name, "") for name in ("name", "description")},
    }


@router.get("/admin/groups")
def groups_page() -> Response[str]:
    req, _ = _admin()
    return _page(req, "groups.html", **_groups_context())


@router.post("/admin/groups")
def create_group() -> Response[str]:
    req, signed_in = _admin()
    _on_error_show(req, "groups.html", **_groups_context())
    form = web.read_form(req, signed_in.session, GROUP_FIELDS)
    _on_error_show(req, "groups.html", **_groups_context(form))
    accounts.create_group(
        form["name"], description=form.get("description"), context=_actor(req, signed_in), clock=req.clock
    )
    return _done(req, "/admin/groups", "group-created")


def _set_group_disabled(name: str, disabled: bool) -> Response[str]:
    req, signed_in = _admin()
    _on_error_show(req, "groups.html", **_groups_context())
    web.read_form(req, signed_in.session, {})
    accounts.set_group_disabled(_path_name(name), disabled, context=_actor(req, signed_in), clock=req.clock)
    return _done(req, "/admin/groups", "group-disabled" if disabled else "group-enabled")


@router.post("/admin/groups/<name>/disable")
def disable_group(name: str) -> Response[str]:
    return _set_group_disabled(name, True)


@router.post("/admin/groups/<name>/enable")
def enable_group(name: str) -> Response[str]:
    return _set_group_disabled(name, False)


# ---------------------------------------------------------------- apps


@router.get("/admin/apps")
def apps_page() -> Response[str]:
    req, _ = _admin()
    return _page(req, "apps.html", apps=apps.list_apps())


def _new_app_context(form: Mapping[str, str], groups: Sequence[Group]) -> dict[str, Any]:
    names = (
        "name",
        "display_name",
        "account_id",
        "session_duration",
        "relay_state",
        "provider_name",
        "acs_url",
    )
    values = {name: form.get(name, "") for name in names}
    values["session_duration"] = values["session_duration"] or "3600"
    return {
        "form": values,
        "rows": _role_rows(form),
        "groups": groups,
        "defaults": {
            "relay_state": apps.AWS_CONSOLE_URL,
            "provider_name": apps.DEFAULT_PROVIDER_NAME,
            "acs_url": apps.AWS_SIGNIN_ACS_URL,
            "min_session": apps.MIN_SESSION_SECONDS,
            "max_session": apps.MAX_SESSION_SECONDS,
        },
    }


@router.get("/admin/apps/new")
def new_app_page() -> Response[str]:
    req, _ = _admin()
    return _page(req, "app_new.html", **_new_app_context({}, accounts.list_groups()))


@router.post("/admin/apps")
def create_app() -> Response[str]:
    req, signed_in = _admin()
    groups = accounts.list_groups()
    _on_error_show(req, "app_new.html", **_new_app_context({}, groups))
    form = web.read_form(req, signed_in.session, APP_FIELDS)
    _on_error_show(req, "app_new.html", **_new_app_context(form, groups))
    with _form_names_missing_items():
        app = apps.create_aws_app(
            form["name"],
            account_id=form["account_id"],
            roles=_role_pairs(_role_rows(form)),
            session_duration=_session_duration(form.get("session_duration")),
            relay_state=form.get("relay_state"),
            provider_name=form.get("provider_name"),
            acs_url=form.get("acs_url"),
            display_name=form.get("display_name"),
            context=_actor(req, signed_in),
            clock=req.clock,
        )
    return _done(req, f"/admin/apps/{app.name}", "app-created")


def _app_context(req: web.WebRequest, name: str) -> dict[str, Any]:
    from idp_core.saml.metadata import entity_id_for

    app = apps.get_app(name)
    return {
        "app": app,
        "provider_arn": apps.provider_arn(app),
        "roles": [
            {"role": mapping.role, "group": mapping.group, "arn": apps.role_arn(app.account_id, mapping.role)}
            for mapping in app.roles
        ],
        "metadata_url": req.absolute_url("/saml/metadata"),
        "entity_id": entity_id_for(req.base_url),
        "launch_url": req.absolute_url(f"/apps/{app.name}/launch"),
        "trust_policy": json.dumps(apps.saml_trust_policy(apps.provider_arn(app), app.acs_url), indent=2),
    }


@router.get("/admin/apps/<name>")
def app_page(name: str) -> Response[str]:
    req, _ = _admin()
    context = _app_context(req, name)
    if context["app"].kind == saml_apps.KIND:
        from functions.sso.saml_admin_routes import saml_app_page

        return saml_app_page(req, context["app"])
    return _page(req, "app.html", **context)


def _app_action(
    name: str, fields: Mapping[str, web.Field]
) -> tuple[web.WebRequest, web.SignedIn, str, dict[str, str]]:
    req, signed_in = _admin()
    context = _app_context(req, name)
    _on_error_show(req, "app.html", **context)
    form = web.read_form(req, signed_in.session, fields)
    return req, signed_in, context["app"].name, form


@router.post("/admin/apps/<name>/disable")
def disable_app(name: str) -> Response[str]:
    req, signed_in, app_name, _ = _app_action(name, {})
    apps.set_app_disabled(app_name, True, context=_actor(req, signed_in), clock=req.clock)
    return _done(req, f"/admin/apps/{app_name}", "app-disabled")


@router.post("/admin/apps/<name>/enable")
def enable_app(name: str) -> Response[str]:
    req, signed_in, app_name, _ = _app_action(name, {})
    apps.set_app_disabled(app_name, False, context=_actor(req, signed_in), clock=req.clock)
    return _done(req, f"/admin/apps/{app_name}", "app-enabled")


@router.post("/admin/apps/<name>/delete")
def delete_app(name: str) -> Response[str]:
    req, signed_in, app_name, form = _app_action(name, CONFIRM_FIELDS)
    if not form.get("confirm"):
        raise BadRequest("Tick the box to confirm that the app should be deleted.")
    apps.delete_app(app_name, context=_actor(req, signed_in), clock=req.clock)
    return _done(req, "/admin/apps", "app-deleted")


# ---------------------------------------------------------------- audit


@router.get("/admin/audit")
def audit_page() -> Response[str]:
    req, _ = _admin()
    events = audit.recent(days=AUDIT_DAYS, limit=MAX_AUDIT_EVENTS, clock=req.clock)
    rows = [
        {
            "time": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(event.at)),
            "type": event.type,
            "outcome": event.outcome,
            "actor": event.actor or "",
            "subject": event.subject or "",
            "source_ip": event.source_ip or "",
            "details": ", ".join(
                f"{key}={value}"
                for key, value in sorted(event.details.as_dict().items() if event.details else ())
            ),
        }
        for event in events
    ]
    return _page(req, "audit.html", events=rows, days=AUDIT_DAYS, limit=MAX_AUDIT_EVENTS)
