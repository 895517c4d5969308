"""make bench's CPU measurement runs its sign-ins as the pages answer them today."""

from __future__ import annotations

import pytest

from bench import cpu


def test_the_cpu_benchmark_completes_both_kinds_of_sign_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu, "SIGN_INS", 2)
    monkeypatch.setattr(cpu, "PROFILED", 1)
    outcome = cpu.run()
    per_sign_in = outcome["figures"]["cpu ms per sign-in"]
    assert set(per_sign_in) == {"password only", "password + TOTP"}
    assert all(value > 0 for value in per_sign_in.values())
    assert [row[0] for row in outcome["rows"]] == [
        "CPU per sign-in in the handler processes, password only (ms)",
        "CPU per sign-in in the handler processes, password + TOTP (ms)",
    ]
    assert outcome["figures"]["profile top (own time, in-process, password + TOTP)"]
