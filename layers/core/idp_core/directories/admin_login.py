"""The product guide's "Enable administrator login": an admin whose password a directory
checked uses the console only if that directory allows it.

Apart from the directory sign-in, and reading only that switch of the stored settings: the
guard of every admin page (``idp_core.guard``) loads neither the directory store nor the
settings' parser (URLs, certificates, filters, schedules), let alone the directory client,
the import or the welcome e-mails.
"""

from __future__ import annotations

import json

from idp_core import audit, sessions
from idp_core.audit import AuditContext
from idp_core.clock import SYSTEM_CLOCK, Clock
from idp_core.errors import Forbidden
from idp_core.models import Directory, Session


class AdminLoginNotAllowed(Forbidden):
    """An admin signed in with a directory password whose directory keeps them out of the console."""

    def __init__(self, directory: str) -> None:
        super().__init__(
            f"Your directory {directory} does not allow administrator sign-in; sign in with your "
            'local password or ask another administrator to turn on "Enable administrator login" '
            "for that directory."
        )


def ensure_admin_login_allowed(
    session: Session, *, context: AuditContext | None = None, clock: Clock = SYSTEM_CLOCK
) -> None:
    """Raise ``AdminLoginNotAllowed`` unless the session's password was checked locally or by
    a directory with "Enable administrator login" on.

    The directory is read afresh (not from the 30-second cache), so turning the switch off
    takes effect on the next console request. A directory deleted since counts as off.
    """
    name = sessions.password_directory(session)
    if name is None:
        return
    allowed, shown_name = _admin_login_switch(name)
    if allowed:
        return
    audit.record(
        audit.EventType.ADMIN_REFUSED,
        "failure",
        context=context,
        subject=str(session.username),
        details={"reason": "directory does not allow administrator sign-in", "directory": name},
        clock=clock,
    )
    raise AdminLoginNotAllowed(shown_name)


def _admin_login_switch(name: str) -> tuple[bool, str]:
    """Whether the stored directory ``name`` has the switch on, and the name to show for it.
    The settings were checked completely when they were saved; anything but a stored ``true``
    counts as off."""
    try:
        item = Directory.get(name, consistent_read=True)
    except Directory.DoesNotExist:
        return False, name
    stored = json.loads(item.settings)
    if not isinstance(stored, dict):
        return False, name
    return stored.get("admin_login") is True, str(stored.get("display_name") or name)
