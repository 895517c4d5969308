"""Typed exceptions. They are mapped to HTTP responses in exactly one place (idp_core.web)."""

from __future__ import annotations


class IdpError(Exception):
    """Base of every error the product raises on purpose; ``message`` is safe to show."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(IdpError):
    status = 400


class AuthenticationRequired(IdpError):
    status = 401


class Forbidden(IdpError):
    status = 403


class CsrfFailure(Forbidden):
    pass


class NotFound(IdpError):
    status = 404


class Conflict(IdpError):
    status = 409


class PayloadTooLarge(IdpError):
    status = 413


class SignInFailed(IdpError):
    """One message for a wrong password, an unknown user, a locked or disabled account (S5)."""

    status = 401

    def __init__(self) -> None:
        super().__init__("The username or password is incorrect.")


class ServiceUnavailable(IdpError):
    """A service this one depends on (DynamoDB, KMS, SES, SNS, a directory) throttled the
    request, failed on its side or did not answer in time: trying again may work. ``failed``
    says what failed, for the log line; the page says only to try again."""

    status = 503
    MESSAGE = "A service this sign-in depends on is busy or did not answer. Please try again in a moment."

    def __init__(self, failed: str, message: str = MESSAGE) -> None:
        super().__init__(message)
        self.failed = failed
