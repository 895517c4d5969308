"""A function's own settings bind only the tables its role grants; the other models keep names
that no deployed table has, so a use of one fails at once instead of reaching a table."""

from __future__ import annotations

import json

from functions.adaptive.settings import AdaptiveSettings
from idp_core.config import Tables
from tests.helpers.fresh_python import run_in_fresh_python

_BOUND_NAMES = (
    "import json, functions.adaptive.handler\n"
    "from idp_core.models import ALL_MODELS\n"
    "print(json.dumps({concern: model.Meta.table_name for concern, model in ALL_MODELS.items()}))"
)


def test_attack_a_function_cannot_reach_a_table_its_role_does_not_grant() -> None:
    """The adaptive function's cold start, with the whole deployment's table names in its
    environment as a careless operator might set them: only its own tables are bound."""
    completed = run_in_fresh_python(_BOUND_NAMES, Tables.with_prefix("deployed-").to_env())
    assert completed.returncode == 0, completed.stderr[-2000:]
    bound = json.loads(completed.stdout.strip().splitlines()[-1])
    granted = set(AdaptiveSettings.TABLES)
    assert {concern for concern, name in bound.items() if name.startswith("deployed-")} == granted
    for concern in set(Tables.concerns()) - granted:
        assert bound[concern].startswith("unbound-"), concern
