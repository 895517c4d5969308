"""make bench's passkey sign-in measurement runs its sign-ins as the pages answer them today,
and a passkey sign-in costs no more DynamoDB requests than password + TOTP and no Decrypt."""

from __future__ import annotations

import pytest

from bench import passkey


def test_the_passkey_benchmark_signs_in_and_counts_its_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passkey, "SIGN_INS", 2)
    outcome = passkey.run()
    figures = outcome["figures"]
    by_operation = figures["requests per sign-in by operation"]
    assert "kms:Decrypt" not in by_operation and by_operation["kms:Sign"] > 0
    dynamodb = sum(count for name, count in by_operation.items() if name.startswith("dynamodb:"))
    assert 0 < dynamodb <= figures["password + totp dynamodb requests per sign-in, same run"]
    assert [row[3] for row in outcome["rows"][:2]] == ["yes", "yes"]
