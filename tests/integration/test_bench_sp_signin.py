"""make bench's SP-initiated sign-in runs as the pages answer today and counts its requests."""

from __future__ import annotations

import pytest

from bench import sp_signin


def test_the_sp_initiated_benchmark_counts_requests_within_the_targets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sp_signin, "SIGN_INS", 2)
    outcome = sp_signin.run()
    per_sign_in = outcome["figures"]["requests per sign-in"]
    assert per_sign_in["kms"] == 2  # The Assertion and the Response are signed.
    assert 0 < per_sign_in["dynamodb"] <= sp_signin.TARGETS["dynamodb"]
    assert set(outcome["figures"]["dynamodb requests per step"]) == set(sp_signin.STEPS)
    assert [row[3] for row in outcome["rows"]] == ["yes", "yes"]
