"""The local outbox shows what the embedded SNS and SES were asked to send, and nothing else."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import boto3
import pytest

from idp_local.gateway import LocalRequest
from idp_local.outbox import outbox_route
from idp_local.stack import aws_env, start_moto


@pytest.fixture
def embedded_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server, endpoint = start_moto()
    for name, value in aws_env(endpoint).items():
        monkeypatch.setenv(name, value)
    try:
        yield endpoint
    finally:
        server.stop()


def outbox(query: dict[str, list[str]]) -> tuple[int, str]:
    response = outbox_route(LocalRequest("GET", "/_local/outbox", query, {}, b"", "127.0.0.1"))
    return response.status, response.body.decode("utf-8")


# moto's backends are process-wide: other tests of this worker send to their own addresses,
# and these are used here alone.
PHONE = "+15555550177"
ADDRESS = "outbox-test@example.com"


@pytest.mark.usefixtures("embedded_aws")
def test_sent_sms_and_email_appear_in_the_outbox_newest_first_with_their_time() -> None:
    before = time.time()
    boto3.client("sns").publish(PhoneNumber=PHONE, Message="Your code is 123456")
    ses = boto3.client("ses")
    ses.verify_email_identity(EmailAddress="idp@example.com")
    ses.send_email(
        Source="idp@example.com",
        Destination={"ToAddresses": [ADDRESS]},
        Message={"Subject": {"Data": "Your code"}, "Body": {"Text": {"Data": "Code <b>654321</b>"}}},
    )

    status, body = outbox({"format": ["json"]})
    _, page = outbox({})

    messages = [m for m in json.loads(body) if m["to"] in ([PHONE], [ADDRESS])]
    assert status == 200
    assert [(m["kind"], m["to"], m["subject"], m["body"]) for m in messages] == [
        ("email", [ADDRESS], "Your code", "Code <b>654321</b>"),
        ("sms", [PHONE], None, "Your code is 123456"),
    ]
    assert before <= messages[1]["sent_at"] <= messages[0]["sent_at"] <= time.time()
    assert "Code &lt;b&gt;654321&lt;/b&gt;" in page  # message text is escaped, never rendered as HTML
    # The page shows when each message was sent, the e-mail (sent last) above the SMS.
    assert re.search(r"<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC</time> <strong>E-mail</strong>", page)
    assert page.index("654321") < page.index("123456")


@pytest.mark.usefixtures("embedded_aws")
def test_three_codes_to_one_number_are_listed_newest_first() -> None:
    sns = boto3.client("sns")
    for n in range(3):
        sns.publish(PhoneNumber="+15555550199", Message=f"Your code is 00000{n}")
    _, body = outbox({"format": ["json"]})
    texts = [m["body"] for m in json.loads(body) if m["to"] == ["+15555550199"]]
    assert texts == ["Your code is 000002", "Your code is 000001", "Your code is 000000"]
