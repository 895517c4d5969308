"""Each function's settings (functions/<name>/settings.py) against what infra gives it: the
environment holds exactly the variables its settings read, the tables its settings name are
exactly those its role may touch, and what it is given loads at the cold start."""

from __future__ import annotations

from typing import Any

import pytest

from functions.adaptive.settings import AdaptiveSettings
from functions.otp.settings import OtpSettings
from functions.provisioning.settings import ProvisioningSettings
from functions.sso.settings import SsoSettings
from idp_core.config import (
    ENV_DATA_KEY_ID,
    ENV_SIGNING_KEY_ID,
    LOCKOUT_VARIABLES,
    SESSION_VARIABLES,
    ConfigurationError,
    FunctionSettings,
    Settings,
    Tables,
    WithDataKey,
    WithLockout,
    WithMessaging,
    WithSigning,
)
from tests.helpers.fresh_python import run_in_fresh_python
from tests.infra.conftest import Synthesis
from tests.infra.template import SERVICES, function_of, role_statements

SETTINGS: dict[str, type[FunctionSettings]] = {
    "sso": SsoSettings,
    "otp": OtpSettings,
    "adaptive": AdaptiveSettings,
    "provisioning": ProvisioningSettings,
}
# What the settings read that infra leaves to their secure defaults: an operator's tunables.
TUNABLES = frozenset(SESSION_VARIABLES + LOCKOUT_VARIABLES)


def _settings_variables(variables: dict[str, Any]) -> set[str]:
    """The function's variables but Powertools' own, which the settings do not read."""
    return {name for name in variables if not name.startswith("POWERTOOLS_")}


def _resolved(variables: dict[str, Any]) -> dict[str, str]:
    # CloudFormation fills in the references at deploy time; any non-empty text stands in.
    return {
        name: value if isinstance(value, str) else f"resolved-{name.lower()}"
        for name, value in variables.items()
    }


def _variables(synthesis: Synthesis, service: str) -> dict[str, Any]:
    _, function = function_of(synthesis, service)
    return dict(function["Properties"]["Environment"]["Variables"])


def test_every_function_has_its_own_settings() -> None:
    assert sorted(SETTINGS) == sorted(SERVICES)


@pytest.mark.parametrize("service", SERVICES)
def test_infra_sets_exactly_the_variables_the_function_settings_read(
    custom_domain_synthesis: Synthesis, service: str
) -> None:
    """With a custom domain and a messaging sender (every optional setting infra knows of),
    the environment is what the settings read, but the tunables left to their defaults."""
    settings = SETTINGS[service]
    given = _settings_variables(_variables(custom_domain_synthesis, service))
    assert given == settings.variables() - TUNABLES
    assert settings.required_variables() <= given


@pytest.mark.parametrize("service", SERVICES)
def test_without_a_custom_domain_or_sender_infra_still_sets_every_required_variable(
    synthesis: Synthesis, service: str
) -> None:
    settings = SETTINGS[service]
    given = _settings_variables(_variables(synthesis, service))
    assert settings.required_variables() <= given <= settings.variables()


def _granted_table_ids(synthesis: Synthesis, service: str) -> set[str]:
    _, function = function_of(synthesis, service)
    return {
        resource["Fn::GetAtt"][0]
        for statement in role_statements(synthesis, function)
        if any(str(action).startswith("dynamodb:") for action in _as_list(statement["Action"]))
        for resource in _as_list(statement["Resource"])
        if isinstance(resource, dict) and "Fn::GetAtt" in resource
    }


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("service", SERVICES)
def test_the_tables_of_the_function_settings_are_those_its_role_may_access(
    synthesis: Synthesis, service: str
) -> None:
    outputs = synthesis.template["Outputs"]
    table_ids = {
        outputs[Tables.output_name(concern)]["Value"]["Ref"]: concern for concern in Tables.concerns()
    }
    granted = {
        table_ids[table_id] for table_id in _granted_table_ids(synthesis, service) if table_id in table_ids
    }
    assert granted == set(SETTINGS[service].TABLES)
    # The environment names the same tables, and they load as the function's settings do.
    loaded = SETTINGS[service].from_env(_resolved(_variables(synthesis, service)))
    assert set(loaded.tables.by_concern()) == granted


@pytest.mark.parametrize(
    ("service", "pieces", "absent"),
    [
        ("sso", (WithSigning, WithLockout, WithMessaging), (WithDataKey,)),
        ("otp", (WithDataKey, WithLockout, WithMessaging), (WithSigning,)),
        ("adaptive", (), (WithSigning, WithLockout, WithMessaging, WithDataKey)),
        ("provisioning", (WithDataKey, WithMessaging), (WithSigning, WithLockout)),
    ],
)
def test_each_function_carries_the_pieces_its_role_matches_and_no_other(
    custom_domain_synthesis: Synthesis,
    service: str,
    pieces: tuple[type[FunctionSettings], ...],
    absent: tuple[type[FunctionSettings], ...],
) -> None:
    """Only the sso function signs, so only it is given the signing key id; only the functions
    that seal secrets are given the data key id; the adaptive function sends nothing."""
    variables = _variables(custom_domain_synthesis, service)
    loaded = SETTINGS[service].from_env(_resolved(variables))
    for piece in pieces:
        assert isinstance(loaded, piece), piece.__name__
    for piece in absent:
        assert not isinstance(loaded, piece), piece.__name__
        with pytest.raises(ConfigurationError, match=piece.__name__):
            piece.of(loaded)
    assert (ENV_SIGNING_KEY_ID in variables) is (WithSigning in pieces)
    assert (ENV_DATA_KEY_ID in variables) is (WithDataKey in pieces)


@pytest.mark.parametrize("service", SERVICES)
def test_a_missing_required_variable_fails_the_cold_start_with_its_name(
    synthesis: Synthesis, service: str
) -> None:
    """Each variable the function requires, left out of what infra gives it, stops the handler's
    import with a ConfigurationError that names it."""
    variables = _resolved(_variables(synthesis, service))
    for name in sorted(SETTINGS[service].required_variables()):
        with pytest.raises(ConfigurationError, match=f"the setting {name} is required but not set"):
            SETTINGS[service].from_env({key: value for key, value in variables.items() if key != name})
    # The same, as Lambda meets it: the handler module itself refuses to load.
    missing = sorted(SETTINGS[service].required_variables())[0]
    without = {key: value for key, value in variables.items() if key != missing}
    completed = run_in_fresh_python(f"import functions.{service}.handler", without)
    assert completed.returncode != 0
    assert f"ConfigurationError: the setting {missing} is required but not set" in completed.stderr


@pytest.mark.parametrize("service", SERVICES)
def test_a_function_takes_its_own_pieces_of_the_deployment_settings(service: str) -> None:
    """The local stack and the tests hold the whole deployment's settings; a function keeps
    its tables and pieces of them and reaches no other table."""
    whole = Settings(tables=Tables.with_prefix("t-"), signing_key_id="sign", data_key_id="data")
    own = SETTINGS[service].narrow(whole)
    assert type(own) is SETTINGS[service]
    assert own.tables.by_concern() == {concern: f"t-{concern.replace('_', '-')}" for concern in own.TABLES}
    assert SETTINGS[service].narrow(own) is own
