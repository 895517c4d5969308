"""A directory user changes their own password in the directory (the product guide's "Allow
users to change password").

The service account finds the user's entry (S23), the change itself runs on a connection
bound as that entry with the current password (S22: an empty one is refused before any
bind), so the directory applies its own access rules and password policy to the user:

- OpenLDAP and other LDAP servers: the RFC 3062 Password Modify extended operation, which
  lets the server hash the new password as it is configured to.
- Active Directory: a modify of ``unicodePwd`` that deletes the old value and adds the new
  one (each a double-quoted UTF-16-LE string), which AD accepts from the user only over an
  encrypted connection.

A refusal of the directory (its password policy, its access rules) is ``PasswordRefused``
with the directory's own words; every other failure is a typed error of
``idp_core.directories.errors``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from idp_core.directories import client
from idp_core.directories.errors import DirectoryError, EmptyPassword, TlsFailure, Unreachable
from idp_core.directories.settings import AD, DirectorySettings
from idp_core.errors import BadRequest

if TYPE_CHECKING:
    import ldap3


class PasswordRefused(DirectoryError):
    """The directory answered the change with an error: the new password breaks its policy,
    or its access rules do not let the user write their password."""


def change_password(
    settings: DirectorySettings,
    bind_password: str,
    username: str,
    current_password: str,
    new_password: str,
    *,
    timeout: float = client.DEFAULT_TIMEOUT,
) -> str:
    """Change the password of the directory user ``username`` from ``current_password`` to
    ``new_password``; returns the DN of the entry that changed. ``WrongPassword`` when the
    directory refuses the current password."""
    if not current_password:
        raise EmptyPassword("An empty password is never sent to the directory.")
    if not new_password:
        # An empty new password asks an RFC 3062 server to generate one: never wanted here.
        raise BadRequest("The new password is required.")
    if settings.kind == AD and not settings.encrypted:
        # The settings refuse this combination already; a password never crosses in clear.
        raise TlsFailure("Active Directory changes a password only over an encrypted connection.")
    user = client.find_user(settings, bind_password, username, timeout=timeout)
    with client.user_connection(settings, user.dn, current_password, timeout=timeout) as conn:
        write_password(conn, settings.kind, user.dn, current_password, new_password)
    return user.dn


def reset_password(
    settings: DirectorySettings,
    bind_password: str,
    username: str,
    new_password: str,
    *,
    timeout: float = client.DEFAULT_TIMEOUT,
) -> str:
    """Set the password of the directory user ``username`` without the current one, through the
    service account (a user who forgot it and followed a reset link): an administrator's reset,
    which the directory allows only if the service account may write passwords. Returns the DN."""
    if not new_password:
        raise BadRequest("The new password is required.")
    if settings.kind == AD and not settings.encrypted:
        raise TlsFailure("Active Directory changes a password only over an encrypted connection.")
    user = client.find_user(settings, bind_password, username, timeout=timeout)
    with client.service_connection(settings, bind_password, timeout=timeout, writable=True) as conn:
        write_password(conn, settings.kind, user.dn, None, new_password)
    return user.dn


def write_password(
    conn: ldap3.Connection, kind: str, dn: str, current_password: str | None, new_password: str
) -> None:
    """The change itself, on ``conn`` bound as ``dn`` (or as the service account, without
    ``current_password``: a reset): the operation the directory ``kind`` takes."""
    from ldap3.core.exceptions import LDAPException

    try:
        if kind == AD:
            # The delete of the old value with the add of the new one is a change, which AD
            # allows the user; a replace would be an administrator's reset.
            changed = conn.extend.microsoft.modify_password(dn, new_password, current_password)
        else:
            changed = conn.extend.standard.modify_password(dn, current_password, new_password)
    except LDAPException as exc:
        raise Unreachable(f"The directory did not answer the password change: {exc}") from exc
    if changed is not True:
        raise PasswordRefused(f"The directory refused the new password: {refusal(conn.result)}")


def refusal(result: dict[str, Any] | None) -> str:
    """The directory's reason for refusing an operation, as one sentence ending in a full stop."""
    result = result or {}
    description = str(result.get("description") or "").strip()
    # AD puts its reason in the diagnostic message ("0000052D: Constraint violation ...").
    message = str(result.get("message") or "").strip().rstrip(".")
    if message and description:
        return f"{message} ({description})."
    return f"{message or description or 'no reason given'}."
