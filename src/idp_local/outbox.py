"""``GET /_local/outbox``: the text messages and e-mails that the embedded SNS and SES "sent".

moto keeps what it was asked to send in its in-process backends; the local stack runs the
moto server in the same process, so this page reads them directly. Nothing leaves the machine.
moto does not note when a message was sent, so ``record_send_times`` swaps the backends'
message stores for ones that do. The page lists the newest first; ``?format=json`` returns
the same list for tests.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass
from html import escape
from typing import Any

from idp_local.gateway import LocalRequest, LocalResponse


@dataclass(frozen=True)
class OutboxMessage:
    kind: str  # "sms" or "email"
    message_id: str
    to: list[str]
    subject: str | None
    body: str
    # Seconds since the epoch, when the embedded SNS or SES accepted the message.
    sent_at: float


class _TimedMessages(OrderedDict[str, Any]):
    """moto's SNS ``sms_messages`` (id -> (phone, text)) that also notes when each arrived."""

    def __init__(self, *args: Any) -> None:
        self.sent_at: dict[str, float] = {}
        super().__init__(*args)

    def __setitem__(self, key: str, value: Any) -> None:
        self.sent_at.setdefault(key, time.time())
        super().__setitem__(key, value)


class _TimedList(list[Any]):
    """moto's SES ``sent_messages`` that also notes when each message arrived."""

    def __init__(self, *args: Any) -> None:
        self.sent_at: dict[int, float] = {}
        super().__init__(*args)

    def append(self, item: Any) -> None:
        self.sent_at.setdefault(id(item), time.time())
        super().append(item)


# Messages sent before the stores were swapped (or in another region) get the time this
# module first saw them.
_first_seen: dict[tuple[str, str], float] = {}
_first_seen_lock = threading.Lock()


def record_send_times(account_id: str, region: str) -> None:
    """Make moto's SNS and SES backends of this account and region note send times."""
    from moto.ses.models import ses_backends
    from moto.sns.models import sns_backends

    sns = sns_backends[account_id][region]
    if not isinstance(sns.sms_messages, _TimedMessages):
        sns.sms_messages = _TimedMessages(sns.sms_messages)
    ses = ses_backends[account_id][region]
    if not isinstance(ses.sent_messages, _TimedList):
        ses.sent_messages = _TimedList(ses.sent_messages)


def _sent_at(store: Any, kind: str, key: Any, message_id: str) -> float:
    recorded = getattr(store, "sent_at", {}).get(key)
    if recorded is not None:
        return float(recorded)
    with _first_seen_lock:
        return _first_seen.setdefault((kind, message_id), time.time())


def _backends(backend_dict: Any) -> list[Any]:
    found = []
    for regions in list(backend_dict.values()):
        found.extend(list(regions.values()))
    return found


def _email(message: Any, store: Any) -> OutboxMessage:
    destinations = getattr(message, "destinations", None) or {}
    if isinstance(destinations, dict):
        keys = ("ToAddresses", "CcAddresses", "BccAddresses")
        to = [address for key in keys for address in destinations.get(key, [])]
    else:
        to = [str(address) for address in destinations]
    body = getattr(message, "body", None)
    if body is None:
        body = getattr(message, "raw_data", None) or getattr(message, "template_data", "")
    message_id = str(getattr(message, "id", ""))
    return OutboxMessage(
        kind="email",
        message_id=message_id,
        to=to,
        subject=getattr(message, "subject", None),
        body=str(body),
        sent_at=_sent_at(store, "email", id(message), message_id),
    )


def collect() -> list[OutboxMessage]:
    """Every SMS and e-mail sent so far, newest first."""
    from moto.ses.models import ses_backends
    from moto.sns.models import sns_backends

    messages: list[OutboxMessage] = []
    for backend in _backends(sns_backends):
        store = backend.sms_messages
        messages += [
            OutboxMessage(
                kind="sms",
                message_id=message_id,
                to=[phone],
                subject=None,
                body=text,
                sent_at=_sent_at(store, "sms", message_id, message_id),
            )
            for message_id, (phone, text) in list(store.items())
        ]
    for backend in _backends(ses_backends):
        store = backend.sent_messages
        messages += [_email(message, store) for message in list(store)]
    # Each store is in sending order; the stable sort keeps that order for equal times.
    ordered = list(enumerate(messages))
    ordered.sort(key=lambda item: (item[1].sent_at, item[0]), reverse=True)
    return [message for _, message in ordered]


def _clock_time(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def outbox_route(request: LocalRequest) -> LocalResponse:
    messages = collect()
    if request.query.get("format") == ["json"]:
        payload = json.dumps([asdict(message) for message in messages], indent=2)
        return LocalResponse(200, payload.encode("utf-8"), content_type="application/json")
    items = "".join(
        "<li><p><time>{at}</time> <strong>{kind}</strong> to {to}{subject}</p><pre>{body}</pre></li>".format(
            at=_clock_time(message.sent_at),
            kind="SMS" if message.kind == "sms" else "E-mail",
            to=escape(", ".join(message.to)),
            subject=f" &mdash; {escape(message.subject)}" if message.subject else "",
            body=escape(message.body),
        )
        for message in messages
    )
    content = f"<ol>{items}</ol>" if items else "<p>Nothing has been sent yet.</p>"
    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Local outbox</title>'
        "<style>body{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem}"
        "pre{white-space:pre-wrap;background:#f4f4f4;padding:.5rem}</style></head><body>"
        "<h1>Local outbox</h1><p>Text messages and e-mails the embedded SNS and SES would have sent, "
        f"newest first.</p>{content}</body></html>"
    )
    return LocalResponse(200, page.encode("utf-8"))
