"""The fault injection of the embedded AWS itself (``idp_local.faults``): which requests a
fault answers, with what, and its HTTP control route in the local stack."""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError

from idp_local.faults import CONTROL_PATH, Fault, FaultPlan
from idp_local.stack import aws_env, start_moto

# One attempt per call, so each request the server sees is one the test made.
ONCE = Config(retries={"mode": "standard", "total_max_attempts": 1})


def _code(call: object) -> str:
    with pytest.raises(ClientError) as refused:
        call()  # type: ignore[operator]
    return str(refused.value.response["Error"]["Code"])


def _table(name: str, config: Config) -> Any:
    """A DynamoDB client, and a new table ``name`` keyed by the string ``k``."""
    dynamodb = boto3.client("dynamodb", config=config)
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return dynamodb


@pytest.mark.usefixtures("aws_endpoint")
def test_a_fault_answers_the_chosen_requests_after_the_first_ones_and_only_so_often(
    faults: FaultPlan,
) -> None:
    kms = boto3.client("kms", config=ONCE)
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    fault = faults.add(Fault("kms", "throttling", operation="Encrypt", after=1, times=2))
    encrypt = lambda: kms.encrypt(KeyId=key, Plaintext=b"x")  # noqa: E731
    encrypt()  # the first one passes (after=1)
    assert [_code(encrypt), _code(encrypt)] == ["ThrottlingException"] * 2
    encrypt()  # spent (times=2)
    kms.describe_key(KeyId=key)  # another operation is never matched
    assert faults.matched(fault) == 4
    assert faults.hits == [("kms", "Encrypt", "throttling")] * 2


@pytest.mark.usefixtures("aws_endpoint")
def test_dynamodb_faults_answer_as_dynamodb_does(faults: FaultPlan) -> None:
    dynamodb = _table("faulty", ONCE)
    item: dict[str, Any] = {"TableName": "faulty", "Item": {"k": {"S": "1"}}}
    faults.add(Fault("*", "throttling", operation="PutItem", times=1))
    assert _code(lambda: dynamodb.put_item(**item)) == "ProvisionedThroughputExceededException"
    faults.add(Fault("dynamodb", "conditional-check", operation="PutItem", times=1))
    assert _code(lambda: dynamodb.put_item(**item)) == "ConditionalCheckFailedException"
    faults.add(Fault("dynamodb", "transaction-conflict", times=1))
    with pytest.raises(ClientError) as cancelled:
        dynamodb.transact_write_items(
            TransactItems=[{"Put": item}, {"Put": {**item, "Item": {"k": {"S": "2"}}}}]  # type: ignore[typeddict-item]
        )
    assert cancelled.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert [r["Code"] for r in cancelled.value.response["CancellationReasons"]] == ["TransactionConflict"] * 2
    dynamodb.put_item(**item)  # every fault is spent
    assert dynamodb.get_item(TableName="faulty", Key={"k": {"S": "1"}})["Item"] == item["Item"]


@pytest.mark.usefixtures("aws_endpoint")
def test_a_hung_request_is_answered_when_the_faults_are_cleared(faults: FaultPlan) -> None:
    sns = boto3.client("sns", config=Config(read_timeout=1, retries={"total_max_attempts": 1}))
    faults.add(Fault("sns", "hang", times=1))
    started = time.monotonic()
    with pytest.raises(ReadTimeoutError):
        sns.list_topics()
    assert 1 <= time.monotonic() - started < 5
    faults.clear()  # the hung request is let go, so the server's thread ends
    assert "Topics" in sns.list_topics()


@pytest.mark.usefixtures("aws_endpoint")
@pytest.mark.parametrize(
    ("kind", "failure"), [("applied-server-error", ClientError), ("lost-answer", ReadTimeoutError)]
)
def test_a_request_whose_answer_fails_was_carried_out_all_the_same(
    faults: FaultPlan, kind: str, failure: type[Exception]
) -> None:
    dynamodb = _table(f"applied-{kind}", Config(read_timeout=1, retries={"total_max_attempts": 1}))
    item: dict[str, Any] = {"TableName": f"applied-{kind}", "Item": {"k": {"S": "1"}}}
    faults.add(Fault("dynamodb", kind, operation="PutItem", times=1))
    with pytest.raises(failure) as failed:
        dynamodb.put_item(**item)
    if isinstance(failed.value, ClientError):
        assert failed.value.response["Error"]["Code"] == "InternalServerError"
    assert dynamodb.get_item(TableName=f"applied-{kind}", Key={"k": {"S": "1"}})["Item"] == item["Item"]
    assert faults.hits == [("dynamodb", "PutItem", kind)]


def test_faults_of_unknown_kinds_or_for_services_without_that_answer_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown fault kind 'slow'"):
        Fault("kms", "slow")
    with pytest.raises(ValueError, match="no conditional-check fault is known for kms"):
        Fault("kms", "conditional-check")
    with pytest.raises(ValueError, match="no refused fault is known for dynamodb"):
        Fault("dynamodb", "refused")
    with pytest.raises(ValueError, match="no applied-server-error fault is known for iam"):
        Fault("iam", "applied-server-error")


def test_the_local_stacks_aws_takes_faults_over_http(monkeypatch: pytest.MonkeyPatch) -> None:
    """``make dev``'s embedded AWS (stack.start_moto) answers the control route, so a fault
    can be planted with curl while clicking through the pages."""
    server, endpoint = start_moto()
    for name, value in aws_env(endpoint).items():
        monkeypatch.setenv(name, value)
    try:
        control = f"{endpoint}{CONTROL_PATH}"
        planted = requests.post(
            control, json={"service": "sns", "kind": "throttling", "operation": "Publish"}, timeout=10
        )
        assert planted.status_code == 200
        assert planted.json()["faults"] == [
            {"service": "sns", "kind": "throttling", "operation": "Publish", "times": None, "after": 0}
        ]
        unknown = requests.post(control, json={"service": "sns", "kind": "conditional-check"}, timeout=10)
        assert unknown.status_code == 400
        assert "no conditional-check fault is known for sns" in unknown.json()["error"]
        sns = boto3.client("sns", config=ONCE)
        # To a topic, not a phone: the local outbox (process-wide in moto) stays as it was.
        topic = sns.create_topic(Name="faults")["TopicArn"]
        assert _code(lambda: sns.publish(TopicArn=topic, Message="hello")) == "Throttled"
        assert requests.get(control, timeout=10).json()["hits"] == [["sns", "Publish", "throttling"]]
        assert requests.delete(control, timeout=10).json() == {"faults": [], "hits": []}
        sns.publish(TopicArn=topic, Message="hello")  # answered by moto again
    finally:
        server.stop()
