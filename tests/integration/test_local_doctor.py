"""`idp --local doctor` against `idp local` (make dev) as a real process: in order from the start,
and a change made afterwards in its embedded AWS is found."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from idp_local.process import LocalStackProcess
from idp_local.stack import DEMO_PROVIDER, DEMO_ROLE

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackProcess]:
    with LocalStackProcess(
        tmp_path_factory.mktemp("doctor") / "state", cwd=REPO, env={"IDP_WORKERS": "1"}
    ) as process:
        yield process


def test_a_fresh_local_stack_is_in_order(stack: LocalStackProcess) -> None:
    checked = stack.idp("--local", "doctor")

    assert (checked.returncode, checked.stderr) == (0, "")
    assert checked.stdout.startswith(
        f"Checking the local stack at {stack.base_url} in us-east-1, account 123456789012; "
        "API Gateway and WAF are checked on deployed stacks only.\n"
    )
    assert (
        f"ok       saml-provider  The IAM SAML provider {DEMO_PROVIDER} (app aws-demo) holds"
        in checked.stdout
    )
    assert checked.stdout.rstrip().endswith("All is well: 7 checks passed.")


def test_a_role_removed_from_the_embedded_aws_is_found(stack: LocalStackProcess) -> None:
    assert stack.state is not None
    iam = boto3.client(
        "iam",
        endpoint_url=stack.state.aws_endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    iam.delete_role(RoleName=DEMO_ROLE)

    checked = stack.idp("--local", "doctor", "--json")

    assert checked.returncode == 1
    [problem] = [finding for finding in json.loads(checked.stdout) if finding["status"] != "ok"]
    assert problem["message"].startswith(f"The role {DEMO_ROLE} (app aws-demo) does not exist")
    # The fix is a command that reaches the embedded AWS, not the real one.
    assert problem["fix"].startswith(
        f"aws --endpoint-url {stack.state.aws_endpoint_url} --region us-east-1 iam create-role"
    )
