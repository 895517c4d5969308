"""``idp audit``: recent audit events (who did what, when, from where; never secrets)."""

from __future__ import annotations

from idp_cli.stack import OnStack, add_command
from idp_cli.terminal import Subcommands, UsageError, print_listing, timestamp
from idp_core import audit

# How far back the audit log is read, at most.
MAX_DAYS = 400


def add_parser(commands: Subcommands) -> None:
    parser = add_command(commands, "audit", "show recent audit events", show_events, with_json=True)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--limit", type=int, default=100)


def show_events(cmd: OnStack) -> None:
    if not 1 <= cmd.args.days <= MAX_DAYS:
        raise UsageError(f"--days must be between 1 and {MAX_DAYS}.")
    events = audit.recent(days=cmd.args.days, limit=cmd.args.limit)
    rows = [
        {
            "at": timestamp(event.at),
            "type": event.type,
            "outcome": event.outcome,
            "actor": event.actor,
            "subject": event.subject,
            "source_ip": event.source_ip,
            "details": dict(event.details.as_dict()) if event.details else {},
        }
        for event in events
    ]
    print_listing(
        cmd,
        rows,
        {
            "TIME": "at",
            "EVENT": "type",
            "OUTCOME": "outcome",
            "ACTOR": "actor",
            "SUBJECT": "subject",
            "SOURCE IP": "source_ip",
        },
    )
