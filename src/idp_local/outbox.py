"""``GET /_local/outbox``: the text messages and e-mails that the embedded SNS and SES "sent".

moto keeps what it was asked to send in its in-process backends; the local stack runs the
moto server in the same process, so this page reads them directly. Nothing leaves the machine.
``?format=json`` returns the same list for tests.
"""

from __future__ import annotations

import json
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


def _backends(backend_dict: Any) -> list[Any]:
    found = []
    for regions in list(backend_dict.values()):
        found.extend(list(regions.values()))
    return found


def _email(message: Any) -> OutboxMessage:
    destinations = getattr(message, "destinations", None) or {}
    if isinstance(destinations, dict):
        keys = ("ToAddresses", "CcAddresses", "BccAddresses")
        to = [address for key in keys for address in destinations.get(key, [])]
    else:
        to = [str(address) for address in destinations]
    body = getattr(message, "body", None)
    if body is None:
        body = getattr(message, "raw_data", None) or getattr(message, "template_data", "")
    return OutboxMessage(
        kind="email",
        message_id=str(getattr(message, "id", "")),
        to=to,
        subject=getattr(message, "subject", None),
        body=str(body),
    )


def collect() -> list[OutboxMessage]:
    """Every SMS and e-mail sent so far, SMS first, each in sending order."""
    from moto.ses.models import ses_backends
    from moto.sns.models import sns_backends

    messages = [
        OutboxMessage(kind="sms", message_id=message_id, to=[phone], subject=None, body=text)
        for backend in _backends(sns_backends)
        for message_id, (phone, text) in list(backend.sms_messages.items())
    ]
    messages += [
        _email(message) for backend in _backends(ses_backends) for message in list(backend.sent_messages)
    ]
    return messages


def outbox_route(request: LocalRequest) -> LocalResponse:
    messages = collect()
    if request.query.get("format") == ["json"]:
        payload = json.dumps([asdict(message) for message in messages], indent=2)
        return LocalResponse(200, payload.encode("utf-8"), content_type="application/json")
    items = "".join(
        "<li><p><strong>{kind}</strong> to {to}{subject}</p><pre>{body}</pre></li>".format(
            kind="SMS" if message.kind == "sms" else "E-mail",
            to=escape(", ".join(message.to)),
            subject=f" &mdash; {escape(message.subject)}" if message.subject else "",
            body=escape(message.body),
        )
        for message in reversed(messages)
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
