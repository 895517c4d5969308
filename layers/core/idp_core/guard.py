"""Who may see a page: the signed-in user (``idp_core.session_guard``, named here too) and,
for the admin console and sensitive changes, the second factor (S10, S28) and the directory's
"Enable administrator login".

It sits above the packages it asks (``sessions``, ``mfa``, ``directories``, ``adaptive``) and
above ``web``, which knows only requests, cookies and responses; the functions' routes and
the shared page code call it, and nothing below it imports it.
"""

from __future__ import annotations

from idp_core import sessions
from idp_core.directories.admin_login import ensure_admin_login_allowed
from idp_core.errors import Forbidden
from idp_core.mfa import freshness, policy
from idp_core.session_guard import (
    ENROL_PAGE,
    MFA_PAGE,
    browser,
    current_session,
    device_cookie,
    device_token,
    require_session,
    session_in_progress,
    this_page,
)
from idp_core.web.auth import RedirectRequired, SignedIn
from idp_core.web.request import WebRequest

# The session checks are ``session_guard``'s; a route that also needs an admin check reaches
# them here, through one module.
__all__ = [
    "ADMIN_SECOND_FACTOR_MAX_AGE_SECONDS",
    "CHANGE_SECOND_FACTOR_MAX_AGE_SECONDS",
    "ENROL_PAGE",
    "MFA_PAGE",
    "browser",
    "current_session",
    "device_cookie",
    "device_token",
    "require_admin",
    "require_fresh_strongest_factor",
    "require_session",
    "session_in_progress",
]

# The admin console needs a second factor proven this recently (when the admin has one), and
# a factor, password or device change one proven this recently (S10).
ADMIN_SECOND_FACTOR_MAX_AGE_SECONDS = 15 * 60
CHANGE_SECOND_FACTOR_MAX_AGE_SECONDS = 10 * 60


def require_admin(req: WebRequest) -> SignedIn:
    """An administrator who proved a second factor of their strongest tier recently (when they
    have one, S28), and whose
    password, if a directory checked it, came from a directory that allows administrator
    sign-in ("Enable administrator login")."""
    signed_in = require_session(req)
    if not signed_in.user.is_admin:
        raise Forbidden("This page is for administrators.")
    if sessions.password_directory(signed_in.session) is not None:
        ensure_admin_login_allowed(
            signed_in.session, context=req.audit_context(signed_in.user.username), clock=req.clock
        )
    next_page = this_page(req) if req.method == "GET" else "/admin"
    require_fresh_strongest_factor(
        req,
        signed_in,
        next_page=next_page,
        max_age_seconds=ADMIN_SECOND_FACTOR_MAX_AGE_SECONDS,
        enrolment_required=True,
    )
    return signed_in


def require_fresh_strongest_factor(
    req: WebRequest,
    signed_in: SignedIn,
    *,
    next_page: str,
    max_age_seconds: int = CHANGE_SECOND_FACTOR_MAX_AGE_SECONDS,
    enrolment_required: bool = False,
) -> None:
    """S10, S28 before a sensitive change (factors, phone or e-mail, password, devices) or the
    admin console: a second factor of the user's strongest tier proven recently, else the
    browser goes to the challenge (or to enrolment) and comes back to ``next_page``."""
    try:
        freshness.ensure_fresh_strongest_factor(
            signed_in.session,
            signed_in.user,
            policy.load_settings(),
            max_age_seconds=max_age_seconds,
            enrolment_required=enrolment_required,
            clock=req.clock,
        )
    except freshness.EnrolmentRequired as exc:
        raise RedirectRequired(exc.message, ENROL_PAGE, {"next": next_page}) from exc
    except freshness.SecondFactorRequired as exc:
        raise RedirectRequired(exc.message, MFA_PAGE, {"next": next_page}) from exc
