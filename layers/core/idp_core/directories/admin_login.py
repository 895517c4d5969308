"""The product guide's "Enable administrator login": an admin whose password a directory
checked uses the console only if that directory allows it.

Apart from the directory sign-in, so that the guard of every admin page (``idp_core.guard``)
loads the directory store and not the directory client, the import or the welcome e-mails.
"""

from __future__ import annotations

from idp_core import audit, sessions
from idp_core.audit import AuditContext
from idp_core.clock import SYSTEM_CLOCK, Clock
from idp_core.directories import store
from idp_core.directories.settings import DirectorySettings
from idp_core.errors import BadRequest, Forbidden, NotFound
from idp_core.models import Session


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
    try:
        settings: DirectorySettings | None = store.load(name)
    except (NotFound, BadRequest):
        settings = None
    if settings is not None and settings.admin_login:
        return
    audit.record(
        audit.EventType.ADMIN_REFUSED,
        "failure",
        context=context,
        subject=str(session.username),
        details={"reason": "directory does not allow administrator sign-in", "directory": name},
        clock=clock,
    )
    raise AdminLoginNotAllowed(settings.display_name if settings is not None else name)
