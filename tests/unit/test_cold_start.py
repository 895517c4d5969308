"""What a function's cold start imports and keeps, checked as Lambda loads the handler: the
function's code and every package it may import laid out on their own (``bench.cold_start``),
imported by a fresh interpreter that sees nothing else of this environment.

Heavy libraries load at their one point of use, so a cold start never pays for them; and
nothing random or unique is made while the handler is imported, because a SnapStart snapshot
of that state is restored into many execution environments at once."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.cold_start import FUNCTIONS, LambdaTree, lay_out, run
from idp_core.mfa.methods import BUILT_IN
from infra.layer_build import BytecodeCompiler, find_bytecode_compiler, handler_module

# Libraries each of which costs a cold start tens of milliseconds (hundreds without bytecode)
# and serves only some requests: directories (ldap3, pyasn1), SAML (lxml, signxml), QR codes
# (segno), phone numbers, page templates (jinja2), certificates and sealing (cryptography),
# TOTP (pyotp) and password hashing (argon2 and its compiled bindings).
HEAVY_MODULES = (
    "ldap3",
    "pyasn1",
    "lxml",
    "signxml",
    "segno",
    "phonenumbers",
    "jinja2",
    "cryptography",
    "pyotp",
    "argon2",
    "_cffi_backend",
)
# The Powertools resolvers and event classes no function uses: idp_core.resolver holds back
# the __init__ of the packages that import all of them (AppSync's with asyncio).
UNUSED_POWERTOOLS = (
    "asyncio",
    "aws_lambda_powertools.event_handler.appsync",
    "aws_lambda_powertools.event_handler.bedrock_agent",
    "aws_lambda_powertools.event_handler.vpc_lattice",
    "aws_lambda_powertools.utilities.data_classes.sqs_event",
    "aws_lambda_powertools.utilities.data_classes.code_pipeline_job_event",
    "aws_lambda_powertools.utilities.data_classes.kinesis_firehose_event",
)
# The directories' store and settings parser: the admin pages' guard reads only the one switch
# it needs ("Enable administrator login", idp_core.directories.admin_login).
DIRECTORY_SETTINGS = ("idp_core.directories.store", "idp_core.directories.settings")
# The second-factor methods' modules: the registry lists them by kind, label and tier and
# imports one when a factor of its kind is checked, sent to or set up.
METHOD_MODULES = tuple(f"idp_core.mfa.methods.{listed.module}" for listed in BUILT_IN)
# The challenge's flow (codes, transactions, sending): the guard's fresh-factor check
# (idp_core.mfa.freshness) needs only the methods' tiers, the user's factors and the session.
SECOND_FACTOR_FLOW = ("idp_core.mfa.flow", "idp_core.mfa.codes", "idp_core.mfa.delivery")
# The project's own code that a function's cold start leaves to the routes that need it, because
# its most frequent first request does not: the sso function's is the sign-in page (or a launch
# before signing in), which needs neither the sign-in and the launch, nor the admin console's
# checks, the second-factor methods, the password change, the user deletion, the directories or
# the SAML apps (with the SAML package: the SP metadata parser, the AWS assertion rules); the
# provisioning function's is the import schedule's tick, which needs no admin check and so no
# second-factor rules, and until a directory is due no import code or directory client; the otp
# function's is the challenge page, which needs neither the security keys' ceremonies (their
# options are a request of their own), the hardware tokens' store, the authenticator apps'
# secrets and their sealing, nor the adaptive sign-in rules (the page asks only the app's
# policy). Each package or module named here counts with its submodules.
DEFERRED_MODULES = {
    "sso": (
        *UNUSED_POWERTOOLS,
        "idp_core.signin",
        "idp_core.launch",
        "idp_core.device_login",
        "idp_core.guard",
        "idp_core.mfa",
        "idp_core.password_change",
        "idp_core.account_deletion",
        "idp_core.directories",
        "idp_core.saml_apps",
        "idp_core.saml",
    ),
    "provisioning": (
        *UNUSED_POWERTOOLS,
        "idp_core.guard",
        "idp_core.mfa",
        "idp_core.mfa_pages",
        "idp_core.directories.imports",
        "idp_core.directories.client",
        "idp_core.directories.signin",
    ),
    "otp": (
        *UNUSED_POWERTOOLS,
        *DIRECTORY_SETTINGS,
        *METHOD_MODULES,
        "idp_core.mfa.webauthn",
        "idp_core.mfa.tokens",
        "idp_core.mfa.totp",
        "idp_core.sealing",
        "idp_core.adaptive.enforce",
    ),
    "adaptive": (*UNUSED_POWERTOOLS, *DIRECTORY_SETTINGS, *METHOD_MODULES, *SECOND_FACTOR_FLOW),
}
# What every handler needs at once: the proof that the check sees what the import loads.
ALWAYS_LOADED = ("pynamodb", "botocore", "aws_lambda_powertools", "idp_core.web")

_LOADED_MODULES = "import sys, json, HANDLER; print(json.dumps(sorted(sys.modules)))"


@pytest.fixture(scope="module")
def lambda_tree(tmp_path_factory: pytest.TempPathFactory) -> LambdaTree:
    return lay_out(tmp_path_factory.mktemp("lambda") / "tree", compiler=None)


def run_in(tree: LambdaTree, function: str, code: str, **env: str) -> str:
    """Run ``code`` as Lambda would run the function's handler; ``HANDLER`` in it stands for
    the handler's module path, which Lambda imports."""
    completed = subprocess.run(
        [sys.executable, "-S", "-B", "-c", code.replace("HANDLER", handler_module(function))],
        capture_output=True,
        text=True,
        env={**tree.environment(), **env},
        cwd=tree.task(function),
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout


def top_level_packages(modules: list[str]) -> set[str]:
    return {name.split(".")[0] for name in modules} | set(modules)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_a_cold_start_leaves_the_heavy_libraries_unloaded(lambda_tree: LambdaTree, function: str) -> None:
    loaded = top_level_packages(json.loads(run_in(lambda_tree, function, _LOADED_MODULES)))
    assert set(ALWAYS_LOADED) <= loaded
    assert not loaded & set(HEAVY_MODULES), (
        f"the {function} handler imports {sorted(loaded & set(HEAVY_MODULES))}"
    )
    # The tree holds the packages' sources only, and the import wrote no bytecode (-B).
    assert not lambda_tree.pyc_files()


def modules_under(tree: LambdaTree, function: str, names: tuple[str, ...]) -> dict[str, list[str]]:
    """After the handler's import: the loaded modules that are ``names`` or inside them, and
    the names no module answers to."""
    code = (
        "import sys, json, importlib.util, HANDLER\n"
        f"names = {names!r}\n"
        "print(json.dumps({'loaded': sorted(module for module in sys.modules for name in names"
        " if module == name or module.startswith(name + '.')),"
        " 'missing': [name for name in names if importlib.util.find_spec(name) is None]}))"
    )
    return json.loads(run_in(tree, function, code))  # type: ignore[no-any-return]


@pytest.mark.parametrize("function", sorted(DEFERRED_MODULES))
def test_a_cold_start_leaves_what_its_first_request_does_not_need(
    lambda_tree: LambdaTree, function: str
) -> None:
    found = modules_under(lambda_tree, function, DEFERRED_MODULES[function])
    # Each name is a module the function does use: a renamed one would make this check vacuous.
    assert found["missing"] == []
    assert found["loaded"] == [], f"the {function} handler's import loads {found['loaded']}"


def test_the_deferred_check_sees_what_an_import_loads(lambda_tree: LambdaTree) -> None:
    """The control of the test above: the otp function's challenge pages need the guard and the
    second-factor flow at once, and the check sees them loaded."""
    found = modules_under(lambda_tree, "otp", DEFERRED_MODULES["sso"])
    assert {"idp_core.guard", "idp_core.mfa", "idp_core.mfa.flow"} <= set(found["loaded"])


def test_the_provisioning_cold_start_loads_no_directory_client_until_a_directory_is_used(
    lambda_tree: LambdaTree,
) -> None:
    """ldap3 and the import code load when a directory is talked to, not with the handler."""
    code = (
        "import sys, HANDLER\n"
        "before = 'ldap3' in sys.modules\n"
        "from idp_core.directories.settings import DirectorySettings\n"
        "DirectorySettings.from_mapping({'name': 'corp', 'display_name': 'Corp', 'kind': 'openldap', 'urls': ['ldaps://ldap.example.com'],"
        " 'bind_dn': 'cn=svc,dc=example,dc=com', 'bases': ['dc=example,dc=com']})\n"
        "print(before, 'ldap3' in sys.modules)"
    )
    assert run_in(lambda_tree, "provisioning", code).split() == ["False", "True"]


# ---------------------------------------------------------------- SnapStart


# Records every call for randomness (os.urandom, which secrets, uuid4 and SystemRandom use,
# and the random module's shared generator) made while the handler is imported.
_RANDOMNESS_DURING_IMPORT = """
import os, sys, json, traceback
calls = []
real_urandom = os.urandom
def urandom(n):
    calls.append(("os.urandom", "".join(traceback.format_stack(limit=6))))
    return real_urandom(n)
os.urandom = urandom
import random
for name in ("random", "getrandbits", "randbytes", "randint", "choice", "shuffle", "uniform"):
    def recorder(*args, _name=name, _real=getattr(random, name), **kwargs):
        calls.append(("random." + _name, "".join(traceback.format_stack(limit=6))))
        return _real(*args, **kwargs)
    setattr(random, name, recorder)
import HANDLER
print(json.dumps(calls))
"""

# The module-level state of the project's modules after the import: every plain value reached
# from their globals (through containers and objects' attributes), by path.
_STATE_AFTER_IMPORT = """
import sys, json, types, HANDLER
PLAIN = (str, bytes, int, float, bool, type(None))
state = {}
def walk(path, value, depth):
    if isinstance(value, PLAIN):
        state[path] = repr(value)
    elif depth == 0 or isinstance(value, (types.ModuleType, types.FunctionType, type)):
        return
    elif isinstance(value, dict):
        for key, item in list(value.items())[:200]:
            walk(f"{path}[{key!r}]", item, depth - 1)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value[:200]):
            walk(f"{path}[{index}]", item, depth - 1)
    elif isinstance(value, (set, frozenset)):
        state[path] = repr(sorted(map(repr, value)))
    elif hasattr(value, "__dict__"):
        walk(path + ".__dict__", vars(value), depth - 1)
own = [name for name, module in sys.modules.items()
       if name.startswith("idp_core") or getattr(module, "__file__", "") and "/task/" in module.__file__]
for name in own:
    for key, value in list(vars(sys.modules[name]).items()):
        if not key.startswith("__"):
            walk(f"{name}.{key}", value, 4)
print(json.dumps(state))
"""


@pytest.mark.parametrize("function", FUNCTIONS)
def test_attack_no_randomness_is_drawn_while_the_handler_is_imported(
    lambda_tree: LambdaTree, function: str
) -> None:
    """A SnapStart snapshot is taken after the import and restored into every new execution
    environment: a key, token or seed drawn then would be the same in all of them. The
    project's secrets are drawn at call time (``secrets``), never at import."""
    calls = json.loads(run_in(lambda_tree, function, _RANDOMNESS_DURING_IMPORT))
    assert calls == [], "\n".join(f"{name} called from:\n{stack}" for name, stack in calls)


def test_the_recorder_sees_randomness_drawn_at_import(lambda_tree: LambdaTree) -> None:
    """The control of the test above: a draw during the import is reported."""
    drawing = _RANDOMNESS_DURING_IMPORT.replace(
        "import HANDLER", "import HANDLER, secrets; secrets.token_bytes(8)"
    )
    calls = json.loads(run_in(lambda_tree, "sso", drawing))
    assert [name for name, _ in calls] == ["os.urandom"]


def _states(tree: LambdaTree, function: str, seeds: tuple[str, str]) -> Iterator[dict[str, str]]:
    for seed in seeds:
        yield json.loads(run_in(tree, function, _STATE_AFTER_IMPORT, PYTHONHASHSEED=seed))


@pytest.mark.parametrize("function", FUNCTIONS)
def test_attack_the_state_a_snapshot_would_share_is_the_same_in_every_start(
    lambda_tree: LambdaTree, function: str
) -> None:
    """Two cold starts keep the same module-level values: nothing unique to a start (an id, a
    key, a timestamp, a process id) is cached at import, so sharing one snapshot is safe."""
    first, second = _states(lambda_tree, function, ("1", "2"))
    assert len(first) > 100, "the walk must reach the modules' settings and tables"
    differing = {path: (first.get(path), second.get(path)) for path in first.keys() | second.keys()}
    differing = {path: values for path, values in differing.items() if values[0] != values[1]}
    assert differing == {}


def test_the_state_comparison_sees_a_value_made_at_import(lambda_tree: LambdaTree) -> None:
    """The control of the test above: a random value kept by a module shows up as a difference."""
    keeping = _STATE_AFTER_IMPORT.replace(
        "import sys, json, types, HANDLER",
        "import sys, json, types, HANDLER, os\nimport idp_core.config\nidp_core.config.KEPT = os.urandom(8)",
    )
    first, second = (json.loads(run_in(lambda_tree, "sso", keeping)) for _ in range(2))
    assert first["idp_core.config.KEPT"] != second["idp_core.config.KEPT"]
    assert {path for path in first if first[path] != second.get(path)} == {"idp_core.config.KEPT"}


def test_the_lambda_tree_is_what_the_functions_import_on_lambda(lambda_tree: LambdaTree) -> None:
    """The tree holds the layer's packages and the runtime's boto3, but nothing else of this
    environment: no test tool (pyOpenSSL changes what botocore imports) is on its path."""
    names = {path.name.split("-")[0].lower() for path in lambda_tree.opt.glob("*.dist-info")}
    assert {"boto3", "botocore", "pynamodb", "ldap3", "signxml", "aws_lambda_powertools"} <= names
    assert not names & {"pyopenssl", "moto", "pytest", "aws_cdk_lib"}
    assert (lambda_tree.opt / "idp_core" / "config.py").is_file()
    for function in FUNCTIONS:
        assert lambda_tree.handler_file(function).is_file()
    assert Path(
        run_in(lambda_tree, "sso", "import botocore; print(botocore.__file__)").strip()
    ).is_relative_to(lambda_tree.opt)


# ---------------------------------------------------------------- the benchmark


def _code_origins(tree: LambdaTree) -> str:
    """What ``python -v`` says of where the provisioning handler's code came from."""
    completed = subprocess.run(
        [sys.executable, "-S", "-B", "-v", "-c", f"import {handler_module('provisioning')}"],
        capture_output=True,
        text=True,
        env=tree.environment(),
        cwd=tree.task("provisioning"),
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stderr


def test_the_benchmark_imports_once_from_bytecode_and_once_compiling_the_sources(
    lambda_tree: LambdaTree, tmp_path: Path
) -> None:
    compiled = lay_out(tmp_path / "bytecode", compiler=BytecodeCompiler.running())
    tag = BytecodeCompiler.running().cache_tag
    handler_file = compiled.handler_file("provisioning")
    handler_pyc = handler_file.parent / "__pycache__" / f"handler.{tag}.pyc"
    botocore_pyc = compiled.opt / "botocore" / "__pycache__" / f"__init__.{tag}.pyc"
    origins = _code_origins(compiled)
    assert f"code object from '{handler_pyc}'" in origins
    assert f"code object from '{botocore_pyc}'" in origins
    origins = _code_origins(lambda_tree)
    assert f"code object from {lambda_tree.handler_file('provisioning')}" in origins
    assert f"code object from {lambda_tree.opt / 'botocore' / '__init__.py'}" in origins
    assert not lambda_tree.pyc_files()


def test_the_benchmark_reports_both_ways_against_boto3_measured_the_same_way() -> None:
    outcome = run(functions=("provisioning",), runs=1)
    figures = outcome["figures"]
    for key in ("import boto3 ms", "import boto3 without bytecode ms", "provisioning ms"):
        assert figures[key] > 0, key
    assert figures["provisioning without bytecode ms"] > figures["provisioning ms"]
    assert figures["import boto3 without bytecode ms"] > figures["import boto3 ms"]
    # The figures are rounded apart, so the ratio of two rounded times may differ in the last digit.
    assert figures["provisioning ratio"] == pytest.approx(
        figures["provisioning ms"] / figures["import boto3 ms"], abs=0.011
    )
    assert figures["provisioning without bytecode ratio"] == pytest.approx(
        figures["provisioning without bytecode ms"] / figures["import boto3 without bytecode ms"], abs=0.011
    )
    assert figures["provisioning gap ms"] == pytest.approx(
        figures["provisioning without bytecode ms"] - figures["provisioning ms"], abs=0.11
    )
    compiler = find_bytecode_compiler()
    assert figures["assets ship bytecode"] == (compiler.cache_tag if compiler else None)
    targets = {row[0]: row[2] for row in outcome["rows"]}
    assert targets["cold import provisioning handler"] == "<= 1.5x"
    assert targets["cold import provisioning handler without bytecode"] == "<= 2.0x"
