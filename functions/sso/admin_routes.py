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

from functions.sso.settings import SsoSettings
from idp_core import accounts, apps, audit, lockout, user_listing, web
from idp_core.audit import AuditContext
from idp_core.errors import BadRequest, NotFound
from idp_core.mail import Mailer
from idp_core.models import App, Group
from idp_core.names import MAX_GROUP_CHARS, MAX_USERNAME_CHARS
from idp_core.passwords import MAX_PASSWORD_CHARS
from idp_core.resolver import APIGatewayRouter, Response

router = APIGatewayRouter()

ROLE_ROWS = 5
GROUP_FIELD_PREFIX = "group:"
MAX_APP_NAME_CHARS = 63
MAX_URL_CHARS = 1024
MAX_AUDIT_EVENTS = 200
AUDIT_DAYS = 7
USERS_PER_PAGE = user_listing.DEFAULT_PAGE_SIZE

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
    "key-removed": "The security key was removed and the user's sessions were ended.",
    "mfa-reset": (
        "The user's second factors were removed and their sessions ended; "
        "they set up a new second factor at their next sign-in."
    ),
    "user-updated": "The user's details were saved.",
    "signed-out": "The user was signed out everywhere: all their sessions ended.",
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


def _role_fields(rows: int) -> dict[str, web.Field]:
    return {
        **{
            f"role_{row}": web.Field(f"IAM role (row {row})", 2048, required=False)
            for row in range(1, rows + 1)
        },
        **{
            f"group_{row}": web.Field(f"Group (row {row})", MAX_GROUP_CHARS, required=False)
            for row in range(1, rows + 1)
        },
        **{
            f"account_{row}": web.Field(f"AWS account (row {row})", 64, required=False)
            for row in range(1, rows + 1)
        },
    }


# The settings of an app the edit page changes: the creation form's but the name.
APP_SETTINGS_FIELDS = {
    "display_name": web.Field("Display name", 128, required=False),
    "account_id": web.Field("AWS account id", 64),
    "session_duration": web.Field("Session duration", 12, required=False),
    "relay_state": web.Field("Relay state", MAX_URL_CHARS, required=False),
    "provider_name": web.Field("SAML provider name", 128, required=False),
    "acs_url": web.Field("ACS URL", MAX_URL_CHARS, required=False),
}
APP_FIELDS = {
    "name": web.Field("App name", MAX_APP_NAME_CHARS),
    **APP_SETTINGS_FIELDS,
    **_role_fields(ROLE_ROWS),
}
DETAILS_FIELDS = {
    "email": web.Field("E-mail", accounts.MAX_EMAIL_CHARS, required=False),
    "phone": web.Field("Phone number", 32, required=False),
    "display_name": web.Field("Display name", accounts.MAX_DISPLAY_NAME_CHARS, required=False),
    # The user's updated_at when the page was shown: a stale form does not overwrite a change.
    "seen_at": web.Field("Page version", 32),
}
PASSWORD_FIELDS = {"password": web.Field("New password", MAX_PASSWORD_CHARS)}
CONFIRM_FIELDS = {"confirm": web.Field("Confirmation", 8, required=False)}


# ---------------------------------------------------------------- helpers


def _admin() -> tuple[web.WebRequest, web.SignedIn]:
    # The admin checks (a recent second factor, the directory's administrator sign-in) load
    # with the first console page, not with the sso function's cold start (the sign-in).
    from idp_core import guard

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


def _role_rows(form: Mapping[str, str], rows: int = ROLE_ROWS) -> list[dict[str, str]]:
    return [
        {
            "account": form.get(f"account_{row}", ""),
            "role": form.get(f"role_{row}", ""),
            "group": form.get(f"group_{row}", ""),
        }
        for row in range(1, rows + 1)
    ]


def _role_pairs(rows: Sequence[Mapping[str, str]]) -> list[tuple[str, str]]:
    pairs = []
    for number, row in enumerate(rows, start=1):
        account, role, group = row["account"].strip(), row["role"].strip(), row["group"].strip()
        if account and not role:
            raise BadRequest(f"Role mapping row {number}: enter the IAM role of account {account!r}.")
        if role and not group:
            raise BadRequest(f"Role mapping row {number}: choose the group that gets the role {role!r}.")
        if group and not role:
            raise BadRequest(f"Role mapping row {number}: enter the IAM role name or ARN for the group.")
        if role:
            # An empty account is the app's own (apps.split_account reads ACCOUNT:ROLE).
            pairs.append((f"{account}:{role}" if account else role, group))
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
        user_count=user_listing.count_users(),
        group_count=len(accounts.list_groups()),
        app_count=len(apps.list_apps()),
    )


# ---------------------------------------------------------------- users


@router.get("/admin/users")
def users_page() -> Response[str]:
    req, _ = _admin()
    search = req.query_param("q", max_chars=MAX_USERNAME_CHARS) or ""
    _on_error_show(req, "users.html", accounts=[], search=search, next_cursor=None, now=req.clock.now())
    cursor = req.query_param("cursor", max_chars=user_listing.MAX_CURSOR_CHARS)
    page = user_listing.users_page(search, limit=USERS_PER_PAGE, cursor=cursor)
    return _page(
        req,
        "users.html",
        accounts=page.users,
        search=search,
        next_cursor=page.next_cursor,
        now=req.clock.now(),
    )


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
            accounts.NewUser(
                form["username"],
                password=form["password"],
                email=form.get("email"),
                display_name=form.get("display_name"),
                groups=_checked_groups(form),
                is_admin=bool(form.get("is_admin")),
            ),
            context=_actor(req, signed_in),
            clock=req.clock,
        )
    return _done(req, _user_path(user.username), "user-created")


def _user_context(req: web.WebRequest, username: str) -> dict[str, Any]:
    from idp_core.clock import readable_utc
    from idp_core.mfa import factors
    from idp_core.mfa.methods import MethodKind

    account = accounts.get_user(username)
    keys = [f for f in factors.list_factors(account.username) if f.kind == MethodKind.WEBAUTHN]
    return {
        "account": account,
        "groups": accounts.list_groups(),
        "locked": lockout.is_locked(account, req.clock),
        # Security keys and passkeys: what an admin needs to tell them apart, never a key.
        "keys": [
            {
                "id": key.factor_id,
                "name": key.label,
                "model": key.aaguid or "unknown",
                "created": readable_utc(key.created_at),
                "last_used": readable_utc(key.last_used_at) or "Never",
            }
            for key in keys
        ],
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


def _seen_at(raw: str) -> float:
    try:
        return float(raw)
    except ValueError as exc:
        raise BadRequest("The form is damaged; open the user's page again.") from exc


@router.post("/admin/users/<username>/details")
def update_user_details(username: str) -> Response[str]:
    req, signed_in, name, form = _user_action(username, DETAILS_FIELDS)
    accounts.update_user(
        name,
        # An emptied field removes the value.
        accounts.UserChanges(
            email=form.get("email", ""),
            phone=form.get("phone", ""),
            display_name=form.get("display_name", ""),
            seen_at=_seen_at(form["seen_at"]),
        ),
        context=_actor(req, signed_in),
        clock=req.clock,
        mailer=Mailer.for_settings(SsoSettings.of(req.settings)),
    )
    return _done(req, _user_path(name), "user-updated")


@router.post("/admin/users/<username>/sign-out")
def sign_out_user(username: str) -> Response[str]:
    req, signed_in, name, _ = _user_action(username, {})
    accounts.sign_out_everywhere(name, context=_actor(req, signed_in), clock=req.clock)
    if name == signed_in.user.username:
        # The admin's own session ended too: the browser signs in again.
        return web.redirect(req, "/login", cookies=[web.clear_session_cookie(req)])
    return _done(req, _user_path(name), "signed-out")


@router.post("/admin/users/<username>/unlock")
def unlock_user(username: str) -> Response[str]:
    req, signed_in, name, _ = _user_action(username, {})
    accounts.unlock_user(name, context=_actor(req, signed_in), clock=req.clock)
    return _done(req, _user_path(name), "user-unlocked")


@router.post("/admin/users/<username>/keys/<key_id>/remove")
def remove_user_key(username: str, key_id: str) -> Response[str]:
    from idp_core.mfa import factors
    from idp_core.mfa.methods import MethodKind

    req, signed_in, name, _ = _user_action(username, {})
    key = factors.get_factor(name, key_id)
    if key.kind != MethodKind.WEBAUTHN:
        raise NotFound("There is no such security key.")
    factors.remove_factor(name, key.factor_id, context=_actor(req, signed_in), clock=req.clock)
    return _done(req, _user_path(name), "key-removed")


@router.post("/admin/users/<username>/delete")
def delete_user(username: str) -> Response[str]:
    req, signed_in, name, form = _user_action(username, CONFIRM_FIELDS)
    if not form.get("confirm"):
        raise BadRequest("Tick the box to confirm that the user should be deleted.")
    # The deletion frees factors through the method plug-ins, which the other pages do not load.
    from idp_core import account_deletion

    account_deletion.delete_user(name, context=_actor(req, signed_in), clock=req.clock)
    return _done(req, "/admin/users", "user-deleted")


@router.post("/admin/users/<username>/reset-mfa")
def reset_user_mfa(username: str) -> Response[str]:
    from idp_core import account_deletion, guard

    req, signed_in, name, form = _user_action(username, CONFIRM_FIELDS)
    # Handing an account back to whoever holds its password is as sensitive as a factor
    # change: the admin proves their own strongest factor again if it is not fresh (S10, S28).
    guard.require_fresh_strongest_factor(req, signed_in, next_page=_user_path(name))
    if not form.get("confirm"):
        raise BadRequest("Tick the box to confirm that every second factor of the user should be removed.")
    account_deletion.reset_second_factors(
        name,
        context=_actor(req, signed_in),
        clock=req.clock,
        mailer=Mailer.for_settings(SsoSettings.of(req.settings)),
    )
    return _done(req, _user_path(name), "mfa-reset")


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


def _new_app_context(
    form: Mapping[str, str], groups: Sequence[Group], *, rows: int = ROLE_ROWS, editing: App | None = None
) -> dict[str, Any]:
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
        "rows": _role_rows(form, rows),
        "groups": groups,
        "editing": editing,
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
            apps.AwsAppChoices(
                account_id=form["account_id"],
                roles=_role_pairs(_role_rows(form)),
                session_duration=_session_duration(form.get("session_duration")),
                relay_state=form.get("relay_state"),
                provider_name=form.get("provider_name"),
                acs_url=form.get("acs_url"),
                display_name=form.get("display_name"),
            ),
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
        "roles": apps.role_table(app),
        "accounts": apps.accounts_of(app),
        "metadata_url": req.absolute_url("/saml/metadata"),
        "entity_id": entity_id_for(req.base_url),
        "launch_url": req.absolute_url(f"/apps/{app.name}/launch"),
        "trust_policy": json.dumps(apps.saml_trust_policy(apps.provider_arn(app), app.acs_url), indent=2),
    }


@router.get("/admin/apps/<name>")
def app_page(name: str) -> Response[str]:
    from idp_core.saml_apps import KIND as SAML_APP_KIND

    req, _ = _admin()
    context = _app_context(req, name)
    if context["app"].kind == SAML_APP_KIND:
        from functions.sso.saml_console import saml_app_page

        return saml_app_page(req, context["app"])
    return _page(req, "app.html", **context)


def _edit_rows(app: App) -> int:
    """Every role mapping of the app, and room for a few more."""
    return len(app.roles) + ROLE_ROWS


def _app_form_values(app: App) -> dict[str, str]:
    """The edit form filled in with the app's current settings."""
    values = {
        "display_name": app.display_name,
        "account_id": app.account_id,
        "session_duration": str(int(app.session_duration)),
        "relay_state": app.relay_state,
        "provider_name": app.provider_name,
        "acs_url": app.acs_url,
    }
    for row, mapping in enumerate(app.roles, start=1):
        values[f"role_{row}"], values[f"group_{row}"] = mapping.role, mapping.group
        values[f"account_{row}"] = mapping.account_id or ""
    return values


@router.get("/admin/apps/<name>/edit")
def edit_app_page(name: str) -> Response[str]:
    from idp_core.saml_apps import KIND as SAML_APP_KIND

    req, _ = _admin()
    app = apps.get_app(name)
    if app.kind == SAML_APP_KIND:  # A SAML app's settings are edited on its own page.
        return web.redirect(req, f"/admin/apps/{app.name}")
    return _page(
        req,
        "app_new.html",
        **_new_app_context(_app_form_values(app), accounts.list_groups(), rows=_edit_rows(app), editing=app),
    )


@router.post("/admin/apps/<name>/edit")
def edit_app(name: str) -> Response[str]:
    req, signed_in = _admin()
    app, groups = apps.get_app(name), accounts.list_groups()
    rows = _edit_rows(app)
    _on_error_show(
        req, "app_new.html", **_new_app_context(_app_form_values(app), groups, rows=rows, editing=app)
    )
    form = web.read_form(req, signed_in.session, {**APP_SETTINGS_FIELDS, **_role_fields(rows)})
    _on_error_show(req, "app_new.html", **_new_app_context(form, groups, rows=rows, editing=app))
    with _form_names_missing_items():
        apps.update_aws_app(
            app.name,
            # An emptied optional field means its default, as on the creation form.
            apps.AwsAppChoices(
                account_id=form.get("account_id", ""),
                roles=_role_pairs(_role_rows(form, rows)),
                session_duration=_session_duration(form.get("session_duration")),
                relay_state=form.get("relay_state", ""),
                provider_name=form.get("provider_name", ""),
                acs_url=form.get("acs_url", ""),
                display_name=form.get("display_name", ""),
            ),
            context=_actor(req, signed_in),
            clock=req.clock,
        )
    return _done(req, f"/admin/apps/{app.name}", "app-updated")


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


# ---------------------------------------------------------------- signing key


@router.get("/admin/signing-key")
def signing_key_page() -> Response[str]:
    # The page code reads certificates: it loads with this page, not with the cold start.
    from functions.sso import signing_key_console

    req, _ = _admin()
    return signing_key_console.page(req)


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
