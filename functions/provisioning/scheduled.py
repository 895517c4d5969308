"""The EventBridge rule's tick: run the directory imports that are due.

Thin on purpose: which directories are due, which kind of run and the lock are
``idp_core.directories.scheduling``'s.
"""

from __future__ import annotations

from typing import Any

from functions.provisioning.settings import ProvisioningSettings
from idp_core import aws, observability
from idp_core.clock import Clock
from idp_core.directories import scheduling
from idp_core.directories.welcome import WelcomeMail

# The metric of each count a run reports (``imports.RunCounts``).
RUN_METRICS = {
    "created": "ImportUsersCreated",
    "updated": "ImportUsersUpdated",
    "disabled": "ImportUsersDisabled",
}


def is_scheduled_event(event: Any) -> bool:
    """Whether ``event`` is the rule's "Scheduled Event" (not an API Gateway request)."""
    return (
        isinstance(event, dict)
        and event.get("source") == "aws.events"
        and event.get("detail-type") == "Scheduled Event"
    )


def handle(event: dict[str, Any], *, settings: ProvisioningSettings, clock: Clock) -> dict[str, Any]:
    # The settings, the data key that unseals the bind passwords among them, are checked at the cold start.
    outcomes = scheduling.run_due_imports(
        kms=aws.client("kms"), clock=clock, welcome=WelcomeMail.for_settings(settings)
    )
    _count(outcomes)
    result = scheduling.summary(outcomes)
    observability.logger.info(
        "scheduled tick %s: %d ran, %d skipped, %d failed",
        event.get("time"),
        result[scheduling.RAN],
        result[scheduling.SKIPPED],
        result[scheduling.FAILED],
    )
    return result


def _count(outcomes: list[scheduling.Outcome]) -> None:
    """The tick's metrics: each failed directory, and the users each run changed."""
    for outcome in outcomes:
        if outcome.status == scheduling.FAILED:
            observability.count("ImportFailed")
        elif outcome.status == scheduling.RAN:
            for key, metric in RUN_METRICS.items():
                observability.count(metric, int(outcome.counts.get(key) or 0))
