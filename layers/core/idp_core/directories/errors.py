"""Typed failures of a directory, each with a precise reason the admin can act on.

All are ``BadRequest``s: the thing at fault is what the admin configured or typed (a URL,
a certificate, a bind DN, a test username), so ``idp_core.web`` answers with a 400 and the
sentence (S26), never a 500. The sign-in never shows these sentences to the person
signing in: it turns a ``CredentialsRejected`` into the one ``SignInFailed`` message (S5)
and may fall back to the local password on ``Unreachable`` (backup authentication);
without that fallback, a directory that cannot answer is a ``DirectoryUnavailable`` (503).
"""

from __future__ import annotations

from idp_core.errors import BadRequest, ServiceUnavailable


class DirectoryError(BadRequest):
    """A directory could not answer the question; ``message`` names the reason."""


class Unreachable(DirectoryError):
    """No server URL accepted a connection (closed port, unknown host, timeout)."""


class TlsFailure(DirectoryError):
    """The connection could not be secured: LDAPS handshake, StartTLS or certificate check."""


class CleartextRefused(TlsFailure):
    """S30: the directory's URLs would carry passwords unencrypted (``ldap://`` without
    StartTLS) and an admin has not allowed unencrypted connections for it."""


class BadServiceBind(DirectoryError):
    """The directory refused the service account's DN or password."""


class AttributeMissing(DirectoryError):
    """A mapped attribute is absent from the user's entry."""


class CredentialsRejected(DirectoryError):
    """The directory answered, and the username and password do not sign in."""


class EmptyPassword(CredentialsRejected):
    """S22: an empty password is never sent (an empty simple bind is an anonymous bind,
    which many servers answer with success)."""


class NoSuchUser(CredentialsRejected):
    pass


class SeveralUsers(CredentialsRejected):
    """The user filter matched more than one entry; none of them is trusted (S23)."""


class WrongPassword(CredentialsRejected):
    pass


class DirectoryUnavailable(ServiceUnavailable):
    """A sign-in needs the user's directory, and it could not answer (unreachable, silent,
    TLS, the service account's bind). The user typed nothing wrong: no failure counts
    against them, the page says to try again (503), and the log line names the reason."""

    def __init__(self, name: str, cause: DirectoryError) -> None:
        super().__init__(f"directory {name}: {cause.message}")
