"""The local stack behind ``make dev`` / ``idp local``: an embedded AWS, the real handlers, demo data.

A moto server in this process plays DynamoDB, KMS, IAM, STS, SNS, SES and EventBridge;
``AWS_ENDPOINT_URL`` points every boto3 and PynamoDB client at it. Each function (sso, otp,
adaptive, provisioning) runs in its own pool of worker processes (``idp_local.workers``),
its execution environments, behind the local gateway, which routes by ``idp_core.routing``
as API Gateway does; requests run in parallel as in Lambda. An ``ImportTicker`` plays the
EventBridge rule that runs the directory imports: it delivers a "Scheduled Event" to the
provisioning function every ``DEFAULT_TICK_SECONDS``.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import logging
import os
import secrets
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, TextIO
from urllib.error import URLError
from urllib.request import urlopen

import boto3
from moto.moto_server.threaded_moto_server import ThreadedMotoServer

from idp_core.config import (
    ENV_COOKIE_SECURE,
    ENV_DATA_KEY_ID,
    ENV_EMAIL_SENDER,
    ENV_NEXT_SIGNING_KEY_ID,
    ENV_PUBLIC_BASE_URL,
    ENV_SIGNING_KEY_ID,
    Settings,
    Tables,
)
from idp_core.models import create_tables
from idp_local.demo_account import set_up_demo_account
from idp_local.gateway import (
    FunctionError,
    LambdaHandler,
    LocalGateway,
    LocalRequest,
    LocalResponse,
    LocalRoute,
)
from idp_local.idp_metadata import idp_metadata_xml
from idp_local.outbox import outbox_route, record_send_times
from idp_local.request_count import CountingMotoServer, RequestCounter
from idp_local.state import (
    CREDENTIALS_FILE_NAME,
    REGION,
    DemoAccount,
    LocalState,
    StateError,
    embedded_aws_env,
    read_state,
    state_dir,
    write_private_file,
    write_state,
)
from idp_local.workers import (
    DEFAULT_WORKERS,
    ENV_WORKERS,
    FUNCTIONS,
    WorkerPool,
    WorkerStartFailed,
    close_all,
    start_fork_server,
    warm_up,
    workers_setting,
)

ENV_HOST = "IDP_HOST"
ENV_PORT = "IDP_PORT"
ENV_DEMO_ADMIN_PASSWORD = "IDP_DEMO_ADMIN_PASSWORD"  # noqa: S105 - a variable name, not a secret.
ENV_DEMO_USER_PASSWORD = "IDP_DEMO_USER_PASSWORD"  # noqa: S105 - a variable name, not a secret.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
MAX_PORT = 65535

TABLE_PREFIX = "idp-local-"
DEMO_ADMIN = "admin"
DEMO_USER = "alice"
DEMO_GROUP = "engineers"
DEMO_APP = "aws-demo"
DEMO_ACCOUNT_ID = "123456789012"  # moto's default account, so IAM and STS agree on ARNs.
DEMO_ROLE = "IdpDemoEngineer"
DEMO_PROVIDER = "serverless-idp-local"
SAML_EMULATOR_PATH = "/_local/aws/saml"
# The sender of e-mail codes, verified in the embedded SES; nothing is really sent.
LOCAL_EMAIL_SENDER = "idp@local.test"
# The deployed rule ticks every 5 minutes; locally a minute keeps "Import now" brisk.
DEFAULT_TICK_SECONDS = 60
TICK_RULE_ARN = f"arn:aws:events:{REGION}:{DEMO_ACCOUNT_ID}:rule/idp-local-ProvisioningImportTick"
# The provisioning function's timeout (infra/constructs/provisioning_function.py): a
# scheduled import may run that long, unlike a request, which API Gateway ends at 29 s.
SCHEDULED_TIMEOUT_SECONDS = 15 * 60

_LOG = logging.getLogger("idp.local")


class StackError(Exception):
    """The local stack cannot start; the message says why in one sentence."""


def scheduled_event(now: float) -> dict[str, Any]:
    """The event an EventBridge schedule rule delivers to its Lambda target at ``now``."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": DEMO_ACCOUNT_ID,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "region": REGION,
        "resources": [TICK_RULE_ARN],
        "detail": {},
    }


class ImportTicker:
    """The EventBridge rule of the scheduled imports: a daemon thread that delivers a
    "Scheduled Event" to the provisioning handler every ``interval`` seconds until stopped.

    ``wait`` is how a loop waits for the next tick: it returns True when the ticker must stop
    (``threading.Event.wait`` of the stop event by default; tests pass their own, so a loop
    runs without sleeping). A tick's exception is logged and the next tick comes as usual,
    as a failed Lambda invocation does not stop the rule.
    """

    def __init__(
        self,
        handler: LambdaHandler,
        interval: float = DEFAULT_TICK_SECONDS,
        *,
        wait: Callable[[float], bool] | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.handler = handler
        self.interval = interval
        self.now = now
        self._stopping = threading.Event()
        self._wait = wait or self._stopping.wait
        self._thread: threading.Thread | None = None

    def tick(self) -> None:
        """Deliver one Scheduled Event; what it returns goes to the log."""
        try:
            result = self.handler(scheduled_event(self.now()), None)
        except Exception:
            _LOG.exception("the scheduled imports' tick failed")
            return
        if isinstance(result, Mapping) and any(result.get(key) for key in ("ran", "failed")):
            _LOG.info("scheduled imports: %s", json.dumps(result.get("directories"), sort_keys=True))

    def run(self) -> None:
        """The thread's loop: wait an interval, tick, until ``wait`` says stop."""
        while not self._wait(self.interval):
            self.tick()

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="idp-local-import-ticker", daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop ticking; a tick under way (an import) is given ``timeout`` seconds to end,
        after which the daemon thread dies with the process."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)


@dataclass
class RunningStack:
    """Everything a caller (``idp local`` or a test) needs to talk to a started stack."""

    state: LocalState
    state_file: Path
    gateway: LocalGateway
    moto: ThreadedMotoServer
    pools: Mapping[str, WorkerPool]
    ticker: ImportTicker | None = None

    def stop(self) -> None:
        # The state file goes first, so no CLI call starts against a stack that is stopping.
        self.state_file.unlink(missing_ok=True)
        try:
            if self.ticker is not None:
                self.ticker.stop()
            self.gateway.stop()
        finally:
            try:
                close_all(self.pools.values())
            finally:
                self.moto.stop()


def start_moto(host: str = "127.0.0.1") -> tuple[ThreadedMotoServer, str]:
    """An in-process moto server on a free port, and its endpoint URL. It applies one DynamoDB
    request at a time (see CountingMotoServer), as DynamoDB applies each atomically: the
    workers' requests really race, and moto alone would let two of them pass one condition."""
    # werkzeug logs every moto request at INFO; the gateway's access log is the useful one.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = CountingMotoServer(RequestCounter(), ip_address=host, port=0)
    server.start()
    record_send_times(DEMO_ACCOUNT_ID, REGION)
    bound_host, port = server.get_host_and_port()
    return server, f"http://{bound_host}:{port}"


def _start_embedded_aws() -> tuple[ThreadedMotoServer, str]:
    """The stack's moto server, made this process's AWS; its STS refuses expired SAML assertions
    by the real clock, as AWS does (`idp aws login`)."""
    from idp_core.clock import SYSTEM_CLOCK
    from idp_local.moto_extensions import check_saml_expiry

    server, endpoint_url = start_moto()
    os.environ.update(aws_env(endpoint_url))
    check_saml_expiry(SYSTEM_CLOCK)
    return server, endpoint_url


def aws_env(endpoint_url: str) -> dict[str, str]:
    return embedded_aws_env(endpoint_url, REGION)


def _url_host(host: str) -> str:
    """The host to put in URLs: a wildcard bind address is reached through loopback."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if address.is_unspecified:
        return "127.0.0.1"
    return f"[{host}]" if isinstance(address, ipaddress.IPv6Address) else host


def _demo_passwords(directory: Path, env: Mapping[str, str]) -> dict[str, str]:
    """Random per state directory and kept there, so a restart does not change them."""
    path = directory / CREDENTIALS_FILE_NAME
    saved: dict[str, str] = {}
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        saved = {}
    passwords = {
        DEMO_ADMIN: saved.get(DEMO_ADMIN) or secrets.token_urlsafe(12),
        DEMO_USER: saved.get(DEMO_USER) or secrets.token_urlsafe(12),
    }
    if passwords != saved:
        write_private_file(path, json.dumps(passwords, indent=2) + "\n")
    overrides = {DEMO_ADMIN: env.get(ENV_DEMO_ADMIN_PASSWORD), DEMO_USER: env.get(ENV_DEMO_USER_PASSWORD)}
    return {name: overrides[name] or password for name, password in passwords.items()}


def _create_keys() -> tuple[str, str, str]:
    """The signing key, the second signing key a rotation switches to (as a deployment has
    them: infra.constructs.keys) and the data key."""
    kms = boto3.client("kms", region_name=REGION)
    signing, next_signing = (
        kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY", Description=f"idp-local {what}")[
            "KeyMetadata"
        ]["KeyId"]
        for what in ("SAML signing key", "next SAML signing key")
    )
    kms.create_alias(AliasName="alias/idp-local-saml-signing", TargetKeyId=signing)
    kms.create_alias(AliasName="alias/idp-local-saml-signing-next", TargetKeyId=next_signing)
    data = kms.create_key(Description="idp-local data key")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/idp-local-data", TargetKeyId=data)
    return signing, next_signing, data


def _verify_email_sender(address: str) -> None:
    # moto's SES, like SES in its sandbox, refuses to send from an unverified identity.
    boto3.client("ses", region_name=REGION).verify_email_identity(EmailAddress=address)


def local_settings_env(
    *,
    tables: Tables,
    signing_key_id: str,
    data_key_id: str,
    base_url: str,
    next_signing_key_id: str | None = None,
) -> dict[str, str]:
    """The environment both handlers read their settings from, as the deployed functions do."""
    env = {
        **tables.to_env(),
        ENV_SIGNING_KEY_ID: signing_key_id,
        **({ENV_NEXT_SIGNING_KEY_ID: next_signing_key_id} if next_signing_key_id else {}),
        ENV_DATA_KEY_ID: data_key_id,
        ENV_PUBLIC_BASE_URL: base_url,
        # Only the local http stack turns Secure cookies off (S13).
        ENV_COOKIE_SECURE: "false",
        ENV_EMAIL_SENDER: LOCAL_EMAIL_SENDER,
    }
    # Settings.to_env adds the defaults of everything else, so the state file is complete.
    return {**Settings.from_env(env).to_env(), **env}


def seed_demo_data(*, admin: DemoAccount, user: DemoAccount, acs_url: str) -> None:
    """Create the demo group, admin, user and AWS app unless they already exist.

    The demo app requires a second factor (the default for new apps), so the demo user
    enrols one at the first sign-in; the user has an e-mail address, so e-mail codes work
    and land in the local outbox.
    """
    from idp_core import accounts, apps
    from idp_core.audit import AuditContext

    context = AuditContext(actor="idp-local-seed")
    if accounts.find_group(DEMO_GROUP) is None:
        accounts.create_group(
            DEMO_GROUP, description="Demo group with a role in the demo AWS app", context=context
        )
    demo_users = (
        accounts.NewUser(
            admin.username,
            password=admin.password,
            display_name="Demo Admin",
            email="admin@example.com",
            groups=[DEMO_GROUP],
            is_admin=True,
        ),
        accounts.NewUser(
            user.username,
            password=user.password,
            display_name="Alice Demo",
            email="alice@example.com",
            groups=[DEMO_GROUP],
        ),
    )
    for new_user in demo_users:
        if accounts.find_user(new_user.username) is None:
            accounts.create_user(new_user, context=context)
    if apps.find_app(DEMO_APP) is None:
        apps.create_aws_app(
            DEMO_APP,
            apps.AwsAppChoices(
                account_id=DEMO_ACCOUNT_ID,
                roles=[(DEMO_ROLE, DEMO_GROUP)],
                provider_name=DEMO_PROVIDER,
                acs_url=acs_url,
                display_name="AWS console (demo account)",
            ),
            context=context,
        )
    if not apps.get_app(DEMO_APP).mfa_required:
        from idp_core.mfa import policy

        policy.set_app_policy(DEMO_APP, mfa_required=True, context=context)


def _emulator_route(clock: Any, metadata_provider: Callable[[], str], acs_url: str) -> LocalRoute:
    from idp_local.aws_emulator import AwsSignInEmulator

    emulator = AwsSignInEmulator(
        boto3.client("iam", region_name=REGION),
        boto3.client("sts", region_name=REGION),
        clock,
        metadata_provider,
        acs_url,
        home_account=DEMO_ACCOUNT_ID,
    )

    def route(request: LocalRequest) -> LocalResponse:
        status, html = emulator.handle(request.form())
        return LocalResponse(status, html.encode("utf-8"))

    return route


def _metadata_provider(settings: Settings, clock: Any) -> Callable[[], str]:
    def provide() -> str:
        return idp_metadata_xml(settings, boto3.client("kms", region_name=REGION), clock)

    return provide


def scheduled_handler(pool: WorkerPool) -> LambdaHandler:
    """The provisioning function as the EventBridge rule invokes it: a scheduled event with
    the function's own timeout."""

    def invoke(event: dict[str, Any], context: Any) -> Mapping[str, Any]:
        return pool.invoke(event, SCHEDULED_TIMEOUT_SECONDS).result

    return invoke


def _tick_route(gateway: LocalGateway, pool: WorkerPool) -> LocalRoute:
    """``POST /_local/tick``: deliver the scheduled imports' event now, without waiting for
    the rule's next tick (an "Import now" then runs at once); answers the function's summary.
    Several at once run in parallel in the provisioning function's workers, as overlapping
    EventBridge invocations do."""

    def route(request: LocalRequest) -> LocalResponse:
        try:
            invocation = pool.invoke(scheduled_event(time.time()), SCHEDULED_TIMEOUT_SECONDS)
        except FunctionError as exc:
            return LocalResponse(502, json.dumps({"message": str(exc)}).encode(), "application/json")
        gateway.log_invocation(request.source_ip, f"{request.method} {request.path}", 200, invocation)
        body = json.dumps(invocation.result, sort_keys=True).encode()
        return LocalResponse(200, body, "application/json")

    return route


def _restart_route(pools: Mapping[str, WorkerPool]) -> LocalRoute:
    """``POST /_local/restart``: every function gets new execution environments, as after a
    deployment, so no 30-second cache of settings (directories, MFA settings, adaptive
    policies) outlives a change made elsewhere. In AWS such a change reaches a warm function
    within those 30 seconds."""

    def route(request: LocalRequest) -> LocalResponse:
        for pool in pools.values():
            pool.recycle()
        return LocalResponse(200, json.dumps({"restarted": sorted(pools)}).encode(), "application/json")

    return route


def _refuse_if_running(path: Path) -> None:
    try:
        state = read_state(path)
    except StateError:
        return
    try:
        with urlopen(f"{state.base_url}/_local/health", timeout=2):  # noqa: S310 - a loopback URL we wrote.
            pass
    except (URLError, OSError, ValueError):
        return  # A stale file from a stack that was killed; it is overwritten below.
    raise StackError(f"A local stack is already running at {state.base_url} (state file {path}).")


def start_stack(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    env: Mapping[str, str] | None = None,
    access_log: TextIO | None = None,
    tick_seconds: float = DEFAULT_TICK_SECONDS,
    workers: int = DEFAULT_WORKERS,
    announce: Callable[[LocalState], None] | None = None,
) -> RunningStack:
    """Start everything and write the state file; the caller must call ``stop()``.
    ``tick_seconds``: how often the scheduled imports' tick comes (0: never). ``workers``:
    the most worker processes (execution environments) each function runs. ``announce``
    runs just before the state file is written, so whoever waits for the file (the CLI,
    a test) finds what it printed already there.

    This changes ``os.environ`` (AWS endpoint, credentials and the handler's settings),
    because the handler, boto3 and PynamoDB read them there: run it in its own process.
    """
    env = os.environ if env is None else env
    directory = state_dir(env)
    path = directory / "local.json"
    _refuse_if_running(path)

    # Bind the public port first, so a taken port fails before anything else starts.
    gateway = _bind_gateway(host, port, access_log)

    moto: ThreadedMotoServer | None = None
    pools: dict[str, WorkerPool] = {}
    try:
        start_fork_server()
        moto, endpoint_url = _start_embedded_aws()

        base_url = f"http://{_url_host(gateway.host)}:{gateway.port}"
        acs_url = f"{base_url}{SAML_EMULATOR_PATH}"
        tables = Tables.with_prefix(TABLE_PREFIX)
        create_tables(tables)
        signing_key_id, next_signing_key_id, data_key_id = _create_keys()
        _verify_email_sender(LOCAL_EMAIL_SENDER)
        settings_env = local_settings_env(
            tables=tables,
            signing_key_id=signing_key_id,
            next_signing_key_id=next_signing_key_id,
            data_key_id=data_key_id,
            base_url=base_url,
        )
        settings = Settings.from_env(settings_env)
        # The seeding below reads the tables' names from here, as the CLI does.
        os.environ.update(settings_env)

        admin, user = _seed_demo_accounts(directory, env, acs_url)

        from idp_core import apps
        from idp_core.clock import SYSTEM_CLOCK

        # Each worker gets the environment a deployed function has: its settings and, here,
        # the embedded AWS.
        function_env = {**aws_env(endpoint_url), **settings_env}
        pools.update(
            {name: WorkerPool(name, function_env, size=workers, log=gateway.log) for name in FUNCTIONS}
        )
        try:
            warm_up(pools.values())
        except WorkerStartFailed as exc:
            raise StackError(f"The functions cannot start: {exc}; its traceback is above.") from exc
        gateway.route_like_the_api(pools)
        # A tick runs in a provisioning worker, so a long import does not hold up the pages.
        ticker = (
            ImportTicker(scheduled_handler(pools["provisioning"]), tick_seconds) if tick_seconds > 0 else None
        )
        metadata = _metadata_provider(settings, SYSTEM_CLOCK)
        set_up_demo_account(
            metadata_xml=metadata(),
            account_id=DEMO_ACCOUNT_ID,
            region=REGION,
            provider_name=DEMO_PROVIDER,
            role_name=DEMO_ROLE,
            acs_url=acs_url,
            base_url=base_url,
            session_duration=int(apps.get_app(DEMO_APP).session_duration),
        )
        _add_local_routes(gateway, pools, _emulator_route(SYSTEM_CLOCK, metadata, acs_url))

        state = LocalState(
            base_url=base_url,
            aws_endpoint_url=endpoint_url,
            region=REGION,
            tables={concern: getattr(tables, concern) for concern in Tables.__dataclass_fields__},
            signing_key_id=signing_key_id,
            data_key_id=data_key_id,
            admin=admin,
            user=user,
            demo_group=DEMO_GROUP,
            demo_app=DEMO_APP,
            pid=os.getpid(),
            settings_env=settings_env,
        )
        gateway.start()
        if announce is not None:
            announce(state)
        write_state(state, path)
        if ticker is not None:
            ticker.start()
    except BaseException:
        gateway.stop()
        close_all(pools.values())
        if moto is not None:
            moto.stop()
        raise
    return RunningStack(state=state, state_file=path, gateway=gateway, moto=moto, pools=pools, ticker=ticker)


def _bind_gateway(host: str, port: int, access_log: TextIO | None) -> LocalGateway:
    try:
        return LocalGateway(_not_ready, host=host, port=port, access_log=access_log)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise StackError(
                f"Port {port} on {host} is already in use; stop whatever uses it or choose another port "
                f"with --port or {ENV_PORT}."
            ) from exc
        raise StackError(f"Cannot listen on {host}:{port}: {exc.strerror}.") from exc


def _seed_demo_accounts(
    directory: Path, env: Mapping[str, str], acs_url: str
) -> tuple[DemoAccount, DemoAccount]:
    """The demo admin and user, with their passwords, created with the demo data if new."""
    passwords = _demo_passwords(directory, env)
    admin = DemoAccount(DEMO_ADMIN, passwords[DEMO_ADMIN])
    user = DemoAccount(DEMO_USER, passwords[DEMO_USER])
    seed_demo_data(admin=admin, user=user, acs_url=acs_url)
    return admin, user


def _add_local_routes(gateway: LocalGateway, pools: Mapping[str, WorkerPool], emulator: LocalRoute) -> None:
    """What a deployment has outside the API: AWS's sign-in page (``emulator``), the mail the
    IdP sent, the scheduler's tick and new execution environments."""
    gateway.local_routes[("POST", SAML_EMULATOR_PATH)] = emulator
    gateway.local_routes[("GET", "/_local/outbox")] = outbox_route
    gateway.local_routes[("POST", "/_local/tick")] = _tick_route(gateway, pools["provisioning"])
    gateway.local_routes[("POST", "/_local/restart")] = _restart_route(pools)


def _not_ready(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {
        "statusCode": 503,
        "headers": {"Content-Type": "text/plain"},
        "body": "The local stack is starting.",
    }


def instructions(state: LocalState, workers: int = DEFAULT_WORKERS) -> str:
    return "\n".join(
        [
            "",
            "The local IdP is running (embedded AWS by moto; nothing leaves this machine).",
            "",
            f"  Sign in:        {state.base_url}/login",
            f"  Your apps:      {state.base_url}/me",
            f"  Admin console:  {state.base_url}/admin (as the demo admin)",
            f"  IdP metadata:   {state.base_url}/saml/metadata",
            f"  Sent SMS/mail:  {state.base_url}/_local/outbox",
            "",
            f"  Each function runs in up to {workers} worker processes (${ENV_WORKERS} or --workers),",
            "  so requests run in parallel as in Lambda; each worker keeps its own 30-second caches.",
            "",
            f"  Demo user:      {state.user.username:<10} password {state.user.password}",
            f"  Demo admin:     {state.admin.username:<10} password {state.admin.password}",
            "",
            f"  The demo user can launch the app '{state.demo_app}': it signs in to a local stand-in",
            f"  for the AWS console ({state.base_url}{SAML_EMULATOR_PATH}) that shows the assumed role.",
            "",
            f"  The demo app requires a second factor. Sign in as {state.user.username}: you will be asked",
            f"  to set one up (or do it any time at {state.base_url}/me/mfa):",
            '    - "Authenticator app": scan the QR code with Google Authenticator, Microsoft',
            "      Authenticator or Authy (or type the secret shown), then enter the 6-digit code;",
            f'    - "E-mail": the code goes to {state.user.username}\'s e-mail address; read it at',
            f'      {state.base_url}/_local/outbox (codes sent by "Text message (SMS)" land there too).',
            "",
            "  Admin commands from another terminal, in this directory:",
            "      uv run idp --local user list",
            "      uv run idp --local user add bob --group engineers --password-stdin",
            f"      uv run idp --local policy show {state.demo_app}",
            f"      uv run idp --local user factors {state.user.username}",
            "",
            f"  State file: {Path(state_dir()) / 'local.json'} (removed on exit). Stop with Ctrl-C.",
            "",
        ]
    )


def _print(out: TextIO, text: str) -> None:
    out.write(text)
    out.flush()


def run(
    host: str | None = None,
    port: int | None = None,
    *,
    out: TextIO = sys.stdout,
    tick_seconds: float | None = None,
    workers: int | None = None,
) -> int:
    """``idp local``: run until SIGINT or SIGTERM, then stop everything and remove the state file.
    ``tick_seconds``: how often the scheduled imports' tick comes (default
    ``DEFAULT_TICK_SECONDS``; 0: never). ``workers``: worker processes per function (default
    ``$IDP_WORKERS`` or ``DEFAULT_WORKERS``)."""
    host = host or os.environ.get(ENV_HOST, "").strip() or DEFAULT_HOST
    if port is None:
        raw_port = os.environ.get(ENV_PORT, "").strip() or str(DEFAULT_PORT)
        if not raw_port.isdigit() or not 0 <= int(raw_port) <= MAX_PORT:
            raise StackError(f"{ENV_PORT} must be a port number, got {raw_port!r}.")
        port = int(raw_port)
    if workers is None:
        try:
            workers = workers_setting(os.environ.get(ENV_WORKERS))
        except ValueError as exc:
            raise StackError(str(exc)) from exc

    # The handler logs unexpected errors (with their stack trace) through ``logging``.
    # botocore's INFO lines (credentials and endpoint found) would drown the access log.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("idp").setLevel(logging.INFO)
    stopping = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        stack = start_stack(
            host,
            port,
            access_log=sys.stderr,
            tick_seconds=DEFAULT_TICK_SECONDS if tick_seconds is None else tick_seconds,
            workers=workers,
            announce=lambda state: _print(out, instructions(state, workers)),
        )
        try:
            # A bounded wait keeps the main thread responsive to signals on every platform.
            while not stopping.wait(0.5):
                pass
            _print(out, "Stopping the local IdP.\n")
        finally:
            stack.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


__all__ = [
    "ImportTicker",
    "LambdaHandler",
    "RunningStack",
    "StackError",
    "instructions",
    "run",
    "seed_demo_data",
    "start_stack",
]
