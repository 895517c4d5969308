"""Where the browser continues once signing in (or a second factor) is done: an app to
launch, a page of this site, or /me. The sign-in form and the MFA pages carry it through
their POSTs as hidden fields and check it the same way (S17: ``next`` is a local path)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from idp_core.errors import BadRequest
from idp_core.names import canonical_app_name
from idp_core.resolver import Response
from idp_core.web.forms import Field
from idp_core.web.request import WebRequest
from idp_core.web.responses import redirect
from idp_core.web.urls import MAX_NEXT_CHARS, safe_next_path

MAX_RELAY_STATE_CHARS = 2048
MAX_APP_NAME_CHARS = 63

TARGET_FIELDS = {
    "app": Field("The app", MAX_APP_NAME_CHARS, required=False),
    "RelayState": Field("RelayState", MAX_RELAY_STATE_CHARS, required=False),
    "next": Field("The page to continue to", MAX_NEXT_CHARS, required=False),
}


@dataclass(frozen=True)
class Target:
    app: str | None = None
    relay_state: str | None = None
    next: str | None = None

    @classmethod
    def read(cls, values: Mapping[str, str]) -> Target:
        app_name = values.get("app") or None
        relay_state = values.get("RelayState") or None
        if app_name is not None and len(app_name) > MAX_APP_NAME_CHARS:
            raise BadRequest(f"The app name must be at most {MAX_APP_NAME_CHARS} characters long.")
        if relay_state is not None and len(relay_state) > MAX_RELAY_STATE_CHARS:
            raise BadRequest(f"RelayState must be at most {MAX_RELAY_STATE_CHARS} characters long.")
        return cls(
            app=canonical_app_name(app_name) if app_name is not None else None,
            relay_state=relay_state,
            next=safe_next_path(values.get("next")),
        )

    def query(self) -> dict[str, str | None]:
        return {"app": self.app, "RelayState": self.relay_state, "next": self.next}

    def fields(self) -> dict[str, str]:
        """Hidden form fields that carry the target through a POST."""
        return {name: value for name, value in self.query().items() if value}

    def redirect(self, req: WebRequest, cookies: list[str] | None = None) -> Response[str]:
        if self.app:
            return redirect(
                req, f"/apps/{self.app}/launch", cookies=cookies or [], query={"RelayState": self.relay_state}
            )
        return redirect(req, self.next or "/me", cookies=cookies or [])
