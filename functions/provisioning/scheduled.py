"""The EventBridge rule's tick: run the directory imports that are due.

Thin on purpose: which directories are due, which kind of run and the lock are
``idp_core.directories.scheduling``'s.
"""

from __future__ import annotations

import logging
from typing import Any

from idp_core import aws
from idp_core.clock import Clock
from idp_core.config import Settings
from idp_core.directories import scheduling
from idp_core.directories.welcome import WelcomeMail

_LOG = logging.getLogger("idp.provisioning")


def is_scheduled_event(event: Any) -> bool:
    """Whether ``event`` is the rule's "Scheduled Event" (not an API Gateway request)."""
    return (
        isinstance(event, dict)
        and event.get("source") == "aws.events"
        and event.get("detail-type") == "Scheduled Event"
    )


def handle(event: dict[str, Any], *, settings: Settings, clock: Clock) -> dict[str, Any]:
    # The settings are checked at the cold start; the data key unseals the bind passwords.
    settings.require_data_key()
    outcomes = scheduling.run_due_imports(
        kms=aws.client("kms"), clock=clock, welcome=WelcomeMail.for_settings(settings)
    )
    result = scheduling.summary(outcomes)
    _LOG.info(
        "scheduled tick %s: %d ran, %d skipped, %d failed",
        event.get("time"),
        result[scheduling.RAN],
        result[scheduling.SKIPPED],
        result[scheduling.FAILED],
    )
    return result
