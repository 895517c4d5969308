"""The request counter behind the AWS-requests-per-sign-in budget counts exactly."""

from __future__ import annotations

import boto3

from idp_core.models import User
from idp_local.request_count import RequestCounter
from tests.support.aws import moto_server


def test_counter_sees_each_request_by_service_and_operation():
    counter = RequestCounter()
    with moto_server(counter):
        boto3.client("sts").get_caller_identity()
        boto3.client("kms").create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")
        counter.reset()
        boto3.client("sts").get_caller_identity()
        boto3.client("kms").list_keys()
        try:
            User.Meta.table_name = "missing-table"
            User._connection = None
            User.get("nobody")
        except Exception:  # noqa: S110 - only the request count matters here
            pass
    counts = counter.snapshot()
    assert counts[("sts", "GetCallerIdentity")] == 1
    assert counts[("kms", "ListKeys")] == 1
    assert counts[("dynamodb", "GetItem")] >= 1
    assert counter.by_service()["kms"] == 1
