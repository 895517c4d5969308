"""Fixtures shared by the integration tests: one moto server per test session (per xdist
worker), fresh tables per test (unique names, so tests never see each other's items);
likewise one OpenLDAP slapd per session and a fresh subtree of it per test. Then what many
modules build on those: the four functions behind the local gateway (``sso``), the apps
and settings their tests start from, a signed-in administrator, the `idp --local` CLI
against an embedded AWS of its own, and the provisioning function's scheduled imports."""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
import requests

from idp_core import accounts, apps, aws, models
from idp_core.clock import FakeClock
from idp_core.config import MessagingConfig, Settings, Tables
from idp_core.directories import store as directory_store
from idp_core.models import User, bind_tables
from idp_core.saml import certificate
from idp_core.saml.certificate import SigningIdentity, signing_identity
from idp_local.faults import FaultPlan
from idp_local.gateway import LocalGateway
from idp_local.stack import aws_env, start_moto
from idp_local.state import DemoAccount, LocalState, write_state
from tests.helpers.aws_accounts import new_account
from tests.helpers.aws_login import EXISTING
from tests.helpers.cli import no_handler
from tests.helpers.ldap_directory import ADMIN_PASSWORD, ALICE_PASSWORD, add_service_account
from tests.helpers.mfa import add_user, directory, give_totp, password_only, signed_in_admin
from tests.helpers.sso import (
    EMAIL_SENDER,
    PASSWORD,
    Sso,
    handler_module,
    new_signing_key,
    running_sso,
    verify_email_sender,
)
from tests.support.aws import create_new_tables, fresh_tables, moto_server
from tests.support.slapd import Slapd, Subtree

# The session's moto server answers with these faults while a test plants them.
_FAULTS = FaultPlan()


@pytest.fixture(scope="session")
def aws_endpoint() -> Iterator[str]:
    with moto_server(faults=_FAULTS) as endpoint:
        yield endpoint


@pytest.fixture
def faults(aws_endpoint: str) -> Iterator[FaultPlan]:
    """Plant faults in the embedded AWS for one test; they are cleared after it."""
    yield _FAULTS
    _FAULTS.clear()
    # The cached clients' adaptive retries slowed down after the throttling: later tests
    # get fresh ones (each test binds fresh tables, which renews the models' own).
    aws._client.cache_clear()
    models._connection.cache_clear()


# The name other helpers were told about.
@pytest.fixture(scope="session")
def moto_server_url(aws_endpoint: str) -> str:
    return aws_endpoint


@pytest.fixture
def tables(aws_endpoint: str) -> Tables:
    return fresh_tables()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def kms(aws_endpoint: str) -> Any:
    return boto3.client("kms")


@pytest.fixture
def key_id(kms: Any) -> str:
    """A symmetric KMS key like the stack's data key, which seals TOTP and token secrets
    (test_saml_signing overrides it with its signing key)."""
    return str(kms.create_key(Description="data key for tests")["KeyMetadata"]["KeyId"])


@pytest.fixture(scope="session")
def slapd() -> Iterator[Slapd]:
    """One real OpenLDAP server for the session (a size limit of 500, as AD's default 1000
    would be, so imports must page); tests take a fresh subtree each with ``ldap_tree``."""
    with Slapd(size_limit=500) as server:
        yield server


@pytest.fixture
def ldap_tree(slapd: Slapd) -> Iterator[Subtree]:
    """A fresh ``ou=t<hex>`` with ``ou=people`` and ``ou=groups``, deleted after the test."""
    with slapd.subtree() as tree:
        yield tree


@pytest.fixture
def people(ldap_tree: Subtree) -> dict[str, str]:
    """alice (in awsadmins and developers) and admin (in no group), plus the service account."""
    add_service_account(ldap_tree)
    alice = ldap_tree.add_user(
        "alice",
        ALICE_PASSWORD,
        cn="Alice Example",
        sn="Example",
        given_name="Alice",
        mail="alice@example.com",
        phone="+44 20 7946 0000",
    )
    admin = ldap_tree.add_user("admin", ADMIN_PASSWORD, sn="Admin", mail="admin@example.com")
    ldap_tree.add_group("awsadmins", [alice])
    ldap_tree.add_group("developers", [alice])
    return {"alice": alice, "admin": admin}


# What the ``sso_setup`` marker of a module (``pytestmark = pytest.mark.sso_setup(...)``) puts
# in place for its tests once the functions run: tests.helpers.mfa's group engineers with an
# app that requires a second factor and one that does not, and MFA settings for tests of the
# password step alone (a user without a factor is not made to enrol).
SSO_SETUPS = {"two_apps": directory, "password_only": password_only}


@pytest.fixture
def sso(request: pytest.FixtureRequest, tables: Tables, clock: FakeClock) -> Iterator[Sso]:
    """The sso, otp, adaptive and provisioning functions behind the local gateway, in this
    process, on the test's tables and clock, with what the module's ``sso_setup`` names. A
    module that needs more overrides ``sso`` with a fixture that takes this one."""
    marker = request.node.get_closest_marker("sso_setup")
    setups = marker.args if marker else ()
    unknown = sorted(set(setups) - set(SSO_SETUPS))
    if unknown:
        pytest.fail(f"sso_setup knows {sorted(SSO_SETUPS)}, not {unknown}")
    with running_sso(tables, clock) as running:
        # A directory cached by an earlier test, under its own tables, must not answer here.
        directory_store.forget_cached_directories()
        for setup in setups:
            SSO_SETUPS[setup](clock)
        yield running


@pytest.fixture
def alice(tables: Tables) -> User:
    """alice, a local user with a password and no second factor."""
    return accounts.create_user(accounts.NewUser("alice", password=PASSWORD))


@pytest.fixture
def root(tables: Tables) -> User:
    """root, an administrator with a password and no second factor yet. Stored at the real
    time, not the test's clock: its own audit event then lands apart from the events the
    tests make and look for."""
    return accounts.create_user(
        accounts.NewUser("root", password=PASSWORD, is_admin=True, display_name="Root Admin")
    )


@pytest.fixture
def admin(sso: Sso, root: User) -> requests.Session:
    """root, signed in and stepped up with an authenticator app: the console wants both."""
    return signed_in_admin(sso)


@pytest.fixture
def identity(aws_endpoint: str, tables: Tables, clock: FakeClock) -> Iterator[SigningIdentity]:
    """The IdP's signing identity over a fresh KMS RSA key of the embedded AWS."""
    kms = boto3.client("kms")
    key_id = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    yield signing_identity(kms, key_id, clock)
    certificate.forget_cached_identities()


# The `idp --local` CLI (tests.helpers.cli) against an embedded AWS of the module's own.
@pytest.fixture(scope="module")
def embedded_aws() -> Iterator[tuple[str, LocalGateway]]:
    """One moto server and one gateway (for /_local/health) shared by the module's tests."""
    server, endpoint = start_moto()
    gateway = LocalGateway(no_handler).start()
    try:
        yield endpoint, gateway
    finally:
        gateway.stop()
        server.stop()


@pytest.fixture
def local_state(
    embedded_aws: tuple[str, LocalGateway], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> LocalState:
    """Fresh tables per test and a state file that points `idp --local` at them."""
    endpoint, gateway = embedded_aws
    for name, value in aws_env(endpoint).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("IDP_STATE_DIR", str(tmp_path / "state"))
    tables = Tables.with_prefix(f"cli-{secrets.token_hex(4)}-")
    create_new_tables(tables)
    settings = Settings(
        tables=tables, signing_key_id="unused-key", public_base_url=gateway.url, cookie_secure=False
    )
    state = LocalState(
        base_url=gateway.url,
        aws_endpoint_url=endpoint,
        region="us-east-1",
        tables={"users": tables.users},
        signing_key_id="unused-key",
        data_key_id="unused-key",
        admin=DemoAccount("admin", "unused"),
        user=DemoAccount("alice", "unused"),
        demo_group="engineers",
        demo_app="aws-demo",
        pid=os.getpid(),
        settings_env=settings.to_env(),
    )
    write_state(state, tmp_path / "state" / "local.json")
    return state


@pytest.fixture
def bound(local_state: LocalState) -> LocalState:
    """The models point at the state file's tables, so tests can arrange data directly."""
    bind_tables(Settings.from_env(local_state.settings_env).tables)
    return local_state


@pytest.fixture
def with_data_key(bound: LocalState, tmp_path: Path) -> LocalState:
    """The state file names a real KMS data key of the embedded AWS."""
    key_id = boto3.client("kms").create_key(Description="cli test data key")["KeyMetadata"]["KeyId"]
    state = dataclasses.replace(bound, data_key_id=key_id)
    write_state(state, tmp_path / "state" / "local.json")
    return state


@pytest.fixture
def demo_app(bound: LocalState) -> str:
    accounts.create_group("engineers")
    apps.create_aws_app(
        "aws-demo", apps.AwsAppChoices(account_id="123456789012", roles=[("Engineer", "engineers")])
    )
    return "aws-demo"


@pytest.fixture
def provisioning(tables: Tables, clock: FakeClock, key_id: str) -> ModuleType:
    """The provisioning function's handler module, configured as its cold start would be; its
    scheduled event runs the due directory imports (tests.helpers.directory_imports)."""
    verify_email_sender()
    settings = Settings(
        tables=tables,
        signing_key_id=new_signing_key(),
        data_key_id=key_id,
        messaging=MessagingConfig(email_sender=EMAIL_SENDER),
    )
    handler = handler_module(settings, "provisioning")
    handler.configure(settings, clock)
    return handler


@pytest.fixture
def totp_secret(sso: Sso) -> str:
    """alice, in the engineers group of the ``two_apps`` setup's apps, with an authenticator
    app; returns its secret."""
    add_user("alice", sso.clock)
    return give_totp(sso, "alice")


@pytest.fixture
def aws_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """The shared credentials and config files of `idp aws login`, in the test's own directory,
    with one profile of the user's that must survive (``tests.helpers.aws_login.EXISTING``)."""
    credentials, config = tmp_path / "aws" / "credentials", tmp_path / "aws" / "config"
    credentials.parent.mkdir()
    credentials.write_text(EXISTING, encoding="utf-8")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    return credentials, config


# AWS apps with roles in several accounts (tests.helpers.aws_accounts): ids of the test's own,
# since moto's IAM outlives each test's tables.
@pytest.fixture
def home() -> str:
    """The app's own AWS account."""
    return new_account()


@pytest.fixture
def member() -> str:
    """A second AWS account of the app."""
    return new_account()
