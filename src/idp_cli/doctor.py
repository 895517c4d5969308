"""``idp doctor``: check a stack's wiring in AWS as an operator would, and say how to fix it.

Each check is a function that reads AWS through boto3 (the same calls against a deployed stack
and against the local stack's embedded AWS) and returns findings: ok, warning or problem, each
a sentence and, unless ok, a fix. The command prints them (``--json``: as a list) and exits 0
when no finding is a problem, 1 otherwise. It changes nothing, in AWS or in the tables.

A deployed stack is found by its CloudFormation outputs (the tables, the signing key, the URL)
and resources (the functions, whose environment names the e-mail sender; the REST API; the
WAF web ACL). The local stack has no API Gateway, so its checks leave out API Gateway and WAF.
"""

from __future__ import annotations

import base64
import datetime
import fnmatch
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, TextIO
from urllib.parse import unquote

from idp_cli.region import OPTION, RegionChoice
from idp_cli.stack import apply_region, settings_from_outputs, use_local
from idp_cli.terminal import EXIT_FAILURE, EXIT_OK, Invocation, Subcommands, UsageError, add_json_option
from idp_core.config import ENV_EMAIL_SENDER, MessagingConfig, Settings

OK = "ok"
WARNING = "warning"
PROBLEM = "problem"

# What each finding is about (the first column of the report).
REGION = "region"
STACK = "stack"
SAML_PROVIDER = "saml-provider"
ROLE = "role"
EMAIL = "ses"
SMS = "sns-sms"
API_LOGGING = "api-gateway-logs"
WAF = "waf"

# AWS's monthly SMS spend limit of a new account, in USD; SNS stops sending once it is spent.
DEFAULT_SMS_SPEND_LIMIT = 1.0
# The SNS list price of one text to a US number, in USD (README: What a sign-in costs).
US_SMS_PRICE = 0.00581
DEFAULT_MAX_SESSION_SECONDS = 3600
# Regions searched at once for a stack that is not in the CLI's region.
REGION_SEARCH_THREADS = 8
_NOT_FOUND = frozenset({"NoSuchEntity", "NotFoundException", "NotFound"})


@dataclass(frozen=True)
class Finding:
    check: str
    status: str  # OK, WARNING or PROBLEM
    message: str
    fix: str | None = None


@dataclass(frozen=True)
class Target:
    """What the checks need to know about the stack they look at."""

    label: str  # "the stack ServerlessIdp", "the local stack"
    idp: str  # how the fixes call the CLI: "idp --stack ServerlessIdp"
    aws: str  # how the fixes call the AWS CLI: "aws --region eu-west-1"
    region: str
    account_id: str
    settings: Settings
    messaging: MessagingConfig
    deployed: bool
    rest_api_ids: tuple[str, ...] = ()
    # The physical ids of the stack's AWS::WAFv2::WebACL resources ("name|id|scope").
    web_acl_ids: tuple[str, ...] = ()


# ---------------------------------------------------------------- the command


def add_parser(commands: Subcommands) -> None:
    parser = commands.add_parser(
        "doctor",
        help="check the stack's wiring in AWS: SAML provider, roles, SES, SNS SMS, API Gateway, WAF, region",
    )
    add_json_option(parser)
    # It finds the stack itself: a stack in another region is a finding, not an error.
    parser.set_defaults(run=run)


def run(invocation: Invocation) -> int:
    args, out = invocation.args, invocation.out
    choice = apply_region(args)
    if args.local:
        target, findings = _local_target()
    elif args.stack:
        located = _stack_target(args.stack, choice)
        if isinstance(located, Finding):
            _report(out, args.json, None, [located])
            return EXIT_FAILURE
        target, findings = located
    else:
        raise UsageError("`idp doctor` checks a stack: give --stack NAME for a deployed stack, or --local.")
    from idp_core.models import bind_tables

    bind_tables(target.settings.tables)
    findings += run_checks(target)
    _report(out, args.json, target, findings)
    return EXIT_FAILURE if any(finding.status == PROBLEM for finding in findings) else EXIT_OK


def run_checks(target: Target) -> list[Finding]:
    from idp_core import apps

    aws_apps = [app for app in apps.list_apps() if app.kind == "aws"]
    checks: list[tuple[str, Callable[[], list[Finding]]]] = [
        (SAML_PROVIDER, lambda: check_saml_providers(target, aws_apps)),
        (ROLE, lambda: check_roles(target, aws_apps)),
        (EMAIL, lambda: check_email(target)),
        (SMS, lambda: check_sms(target)),
    ]
    if target.deployed:
        checks += [
            (API_LOGGING, lambda: check_api_gateway_logging(target)),
            (WAF, lambda: check_waf(target)),
        ]
    findings: list[Finding] = []
    for name, check in checks:
        findings += _guarded(name, check)
    return findings


def _guarded(name: str, check: Callable[[], list[Finding]]) -> list[Finding]:
    """A check whose AWS call is refused (AccessDenied, throttling) is a problem; the others still run."""
    from botocore.exceptions import ClientError

    try:
        return check()
    except ClientError as exc:
        error = exc.response.get("Error", {})
        return [
            Finding(
                name,
                PROBLEM,
                f"Could not check: AWS refused {exc.operation_name} ({error.get('Code')}: "
                f"{error.get('Message')}).",
                "Run doctor with credentials that may read the stack's resources (the stack's "
                "OperatorPolicyArn output), or see the AWS error above.",
            )
        ]


def _report(out: TextIO, as_json: bool, target: Target | None, findings: Sequence[Finding]) -> None:
    if as_json:
        out.write(json.dumps([asdict(finding) for finding in findings], indent=2, ensure_ascii=False) + "\n")
        return
    if target is not None:
        scope = "" if target.deployed else "; API Gateway and WAF are checked on deployed stacks only"
        out.write(f"Checking {target.label} in {target.region}, account {target.account_id}{scope}.\n\n")
    width = max(len(finding.check) for finding in findings)
    previous_fix = None
    for finding in findings:
        status = "PROBLEM" if finding.status == PROBLEM else finding.status
        out.write(f"{status:<7}  {finding.check:<{width}}  {finding.message}\n")
        # Several gaps in one trust policy share one fix; it is printed once.
        fix_lines = (
            ["(as above)"]
            if finding.fix and finding.fix == previous_fix
            else (finding.fix or "").splitlines()
        )
        for number, line in enumerate(fix_lines):
            lead = "fix: " if number == 0 else "     "
            out.write(f"{'':<7}  {'':<{width}}    {lead}{line}\n")
        previous_fix = finding.fix
    problems = sum(finding.status == PROBLEM for finding in findings)
    warnings = sum(finding.status == WARNING for finding in findings)
    if problems or warnings:
        out.write(f"\n{_count(problems, 'problem')}, {_count(warnings, 'warning')}.\n")
    else:
        out.write(f"\nAll is well: {_count(len(findings), 'check')} passed.\n")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


# ---------------------------------------------------------------- targets


def _local_target() -> tuple[Target, list[Finding]]:
    from idp_local.state import read_state

    settings = use_local()
    state = read_state()
    target = Target(
        label=f"the local stack at {state.base_url}",
        idp="idp --local",
        aws=f"aws --endpoint-url {state.aws_endpoint_url} --region {state.region}",
        region=state.region,
        account_id=_caller_account(),
        settings=settings,
        messaging=settings.messaging,
        deployed=False,
    )
    found = Finding(
        REGION, OK, f"The CLI uses {state.region}, the embedded AWS's region (from the local state file)."
    )
    return target, [found]


def _stack_target(name: str, choice: RegionChoice) -> tuple[Target, list[Finding]] | Finding:
    """The deployed stack in the CLI's region, or the finding that says why it cannot be checked."""
    import boto3
    from botocore.exceptions import ClientError

    if choice.region is None:
        return Finding(
            REGION,
            PROBLEM,
            f"The CLI has no AWS region ({choice.source}).",
            f"Give {OPTION} REGION, set AWS_REGION, or set the profile's region: aws configure set region "
            "REGION",
        )
    cloudformation = boto3.client("cloudformation")
    try:
        stack = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    except ClientError as exc:
        if not _stack_missing(exc):
            error = exc.response.get("Error", {})
            return Finding(
                STACK,
                PROBLEM,
                f"Cannot read the stack {name} in {choice.region}: {error.get('Code')}: "
                f"{error.get('Message')}",
                "The CLI's credentials need cloudformation:DescribeStacks and ListStackResources on the "
                "stack (the stack's OperatorPolicyArn output).",
            )
        elsewhere = find_stack_region(name, exclude=choice.region)
        if elsewhere is None:
            raise UsageError(
                f"There is no CloudFormation stack {name!r} in {choice.region} ({choice.source}) nor in any "
                "other region these credentials can read."
            ) from exc
        return Finding(
            REGION,
            PROBLEM,
            f"The CLI uses {choice.region} ({choice.source}), but the stack {name} is in {elsewhere}.",
            f"idp {OPTION} {elsewhere} --stack {name} doctor   (or set AWS_REGION={elsewhere})",
        )
    outputs = {item["OutputKey"]: item["OutputValue"] for item in stack.get("Outputs", [])}
    settings = settings_from_outputs(name, outputs)
    resources = _stack_resources(cloudformation, name)
    region = stack["StackId"].split(":")[3]
    target = Target(
        label=f"the stack {name}",
        idp=f"idp {OPTION} {region} --stack {name}" if choice.source == OPTION else f"idp --stack {name}",
        aws=f"aws --region {region}",
        region=region,
        account_id=_caller_account(),
        settings=settings,
        messaging=_functions_messaging(resources.get("AWS::Lambda::Function", ())),
        deployed=True,
        rest_api_ids=tuple(resources.get("AWS::ApiGateway::RestApi", ())),
        web_acl_ids=tuple(resources.get("AWS::WAFv2::WebACL", ())),
    )
    found = Finding(REGION, OK, f"The CLI uses {region} ({choice.source}), the stack's region.")
    return target, [found]


def _stack_missing(exc: Any) -> bool:
    error = exc.response.get("Error", {})
    return error.get("Code") == "ValidationError" and "does not exist" in str(error.get("Message", ""))


def find_stack_region(name: str, *, exclude: str) -> str | None:
    """The first other region (alphabetically) where these credentials see a stack ``name``."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    session = boto3.session.Session()
    regions = sorted(
        region for region in session.get_available_regions("cloudformation") if region != exclude
    )
    # Clients are made here, one thread, since making them is not thread-safe; only calls run in parallel.
    clients = {region: session.client("cloudformation", region_name=region) for region in regions}

    def has_stack(region: str) -> bool:
        try:
            clients[region].describe_stacks(StackName=name)
        except (ClientError, BotoCoreError):
            # Not there, or a region these credentials may not use (an opt-in region).
            return False
        return True

    with ThreadPoolExecutor(max_workers=REGION_SEARCH_THREADS) as pool:
        found = list(pool.map(has_stack, regions))
    return next((region for region, here in zip(regions, found, strict=True) if here), None)


def _stack_resources(cloudformation: Any, name: str) -> dict[str, list[str]]:
    """The physical ids of the stack's resources, by type."""
    by_type: dict[str, list[str]] = {}
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=name):
        for summary in page["StackResourceSummaries"]:
            if summary.get("PhysicalResourceId"):
                by_type.setdefault(summary["ResourceType"], []).append(summary["PhysicalResourceId"])
    return by_type


def _functions_messaging(function_names: Iterable[str]) -> MessagingConfig:
    """The e-mail sender from the functions' environment, where the stack's ``emailSender`` goes."""
    from idp_core import aws

    client = aws.client("lambda")
    for function_name in function_names:
        environment = client.get_function_configuration(FunctionName=function_name).get("Environment", {})
        sender = environment.get("Variables", {}).get(ENV_EMAIL_SENDER)
        if sender:
            return MessagingConfig(email_sender=sender)
    return MessagingConfig()


def _caller_account() -> str:
    from idp_core import aws

    return str(aws.client("sts").get_caller_identity()["Account"])


# ---------------------------------------------------------------- IAM SAML provider


@dataclass(frozen=True)
class ProviderMetadata:
    entity_id: str
    certificates: tuple[bytes, ...]  # DER, the signing certificates
    # The IdP's only: the certificate of the key its last rotation retired (DER), if made.
    retired: tuple[bytes, ...] = ()


def check_saml_providers(target: Target, aws_apps: Sequence[Any]) -> list[Finding]:
    """Each IAM SAML provider the AWS apps of this account name holds the metadata the IdP publishes now."""
    from idp_core.apps import accounts_of, provider_arn_in

    if not aws_apps:
        return [
            Finding(
                SAML_PROVIDER,
                WARNING,
                "No AWS app is configured, so no IAM SAML provider or role was checked.",
                f"{target.idp} app add-aws NAME --account-id {target.account_id} --role ROLE=GROUP (README: "
                "Deploying to your account)",
            )
        ]
    providers: dict[str, list[str]] = {}
    other_accounts: dict[str, list[str]] = {}
    for app in aws_apps:
        for account in accounts_of(app):
            if account == target.account_id:
                providers.setdefault(provider_arn_in(account, app), []).append(app.name)
            else:
                other_accounts.setdefault(account, []).append(app.name)
    findings = [_other_account(target, account, names) for account, names in sorted(other_accounts.items())]
    if providers:
        current = _current_metadata(target)
        for arn, names in sorted(providers.items()):
            findings.append(_check_provider(target, arn, names, current))
    return findings


def _other_account(target: Target, account_id: str, app_names: Sequence[str]) -> Finding:
    return Finding(
        SAML_PROVIDER,
        WARNING,
        f"The app(s) {', '.join(app_names)} sign in to account {account_id}; doctor checks IAM only in "
        f"account {target.account_id}, whose credentials it uses.",
        f"With credentials for {account_id}, compare `aws iam get-saml-provider` with `{target.idp} "
        "metadata` and each role's trust policy with the README's.",
    )


def _current_metadata(target: Target) -> ProviderMetadata:
    """What ``idp metadata`` prints now: the entity id and the stored signing certificates, the
    next one too during a key rotation (none before the first sign-in or ``idp metadata``,
    which create them; doctor itself writes nothing)."""
    from idp_core.saml.metadata import entity_id_for
    from idp_core.saml.signing_keys import current_keys

    keys = current_keys(target.settings.signing_key_ids, fresh=True)
    return ProviderMetadata(
        entity_id=entity_id_for(target.settings.public_base_url or ""),
        certificates=_stored_certificates(keys.published),
        retired=_stored_certificates((keys.retired,) if keys.retired else ()),
    )


def _stored_certificates(key_ids: Iterable[str]) -> tuple[bytes, ...]:
    """The DER of each key's certificate the IdP has made, in the keys' order."""
    from cryptography.hazmat.primitives import serialization

    from idp_core.saml.certificate import stored_certificate

    stored = (stored_certificate(key_id) for key_id in key_ids)
    return tuple(
        certificate.public_bytes(serialization.Encoding.DER)
        for certificate in stored
        if certificate is not None
    )


def _check_provider(target: Target, arn: str, app_names: Sequence[str], current: ProviderMetadata) -> Finding:
    from botocore.exceptions import ClientError

    from idp_core import aws

    name = arn.rsplit("/", 1)[-1]
    about = f"The IAM SAML provider {name} (app {', '.join(app_names)})"
    register = f"{target.idp} metadata > idp-metadata.xml"
    update = f"{target.aws} iam update-saml-provider --saml-provider-arn {arn} --saml-metadata-document file://idp-metadata.xml"
    try:
        provider = aws.client("iam").get_saml_provider(SAMLProviderArn=arn)
    except ClientError as exc:
        if _error_code(exc) not in _NOT_FOUND:
            raise
        return Finding(
            SAML_PROVIDER,
            PROBLEM,
            f"{about} does not exist: AWS refuses every sign-in to the app.",
            f"{register}\n{target.aws} iam create-saml-provider --name {name} --saml-metadata-document "
            "file://idp-metadata.xml",
        )
    problem = _held_metadata_problem(provider, current)
    if problem is not None:
        return Finding(SAML_PROVIDER, PROBLEM, f"{about} {problem}", f"{register}\n{update}")
    retired = set(parse_provider_metadata(provider["SAMLMetadataDocument"]).certificates) & set(
        current.retired
    )
    if retired:
        # Only the sso function can sign with the retired key, and warm ones may for a minute
        # after the switch: worth removing, not an open door.
        return Finding(
            SAML_PROVIDER,
            WARNING,
            f"{about} still holds the certificate {_fingerprints(retired)} of the signing key the last "
            "rotation retired; nothing signs with it a few minutes after the switch: remove it.",
            f"{register}\n{update}",
        )
    return Finding(
        SAML_PROVIDER,
        OK,
        f"{about} holds the IdP's current metadata (entity ID {current.entity_id}, certificate "
        f"{_fingerprints(current.certificates)}).",
    )


def _held_metadata_problem(provider: Mapping[str, Any], current: ProviderMetadata) -> str | None:
    """What is wrong with the metadata an IAM SAML provider holds, worded to follow its name;
    None when it is the IdP's current metadata."""
    try:
        held = parse_provider_metadata(provider["SAMLMetadataDocument"])
    except ValueError as exc:
        return f"holds metadata that cannot be read: {exc}"
    if held.entity_id != current.entity_id:
        return (
            f"holds the entity ID {held.entity_id}, but the IdP is now {current.entity_id} (its URL "
            "changed): AWS refuses its assertions."
        )
    certificate_problem = _held_certificate_problem(held, current)
    if certificate_problem is not None:
        return certificate_problem
    valid_until = provider.get("ValidUntil")
    if isinstance(valid_until, datetime.datetime) and valid_until < datetime.datetime.now(datetime.UTC):
        return f"expired on {valid_until:%Y-%m-%d}."
    return None


def _held_certificate_problem(held: ProviderMetadata, current: ProviderMetadata) -> str | None:
    if not current.certificates:
        return (
            "cannot hold the IdP's certificate: the IdP has not made it yet (it does at the first "
            "sign-in or `idp metadata`)."
        )
    foreign = [der for der in held.certificates if der not in current.certificates + current.retired]
    if foreign and set(current.certificates) & set(held.certificates):
        return (
            f"holds the IdP's certificate and also {_fingerprints(foreign)}, which the IdP does not "
            "use: AWS accepts assertions signed with that certificate's key as well."
        )
    if not set(current.certificates) & set(held.certificates):
        return (
            f"holds the certificate {_fingerprints(held.certificates)}, not the IdP's current one "
            f"{_fingerprints(current.certificates)}: AWS refuses the IdP's signatures."
        )
    missing = [der for der in current.certificates if der not in held.certificates]
    if missing:
        return (
            f"does not hold the IdP's next signing certificate {_fingerprints(missing)} (a key rotation "
            "is under way): `idp signing-key rotate finish` waits until it does."
        )
    return None


def parse_provider_metadata(document: str | bytes) -> ProviderMetadata:
    """The entity id and signing certificates of SAML metadata; ValueError if it is not readable."""
    from idp_core.errors import IdpError
    from idp_core.saml.xml import NS_DS, NS_MD, parse_xml

    data = document.encode("utf-8") if isinstance(document, str) else document
    try:
        root = parse_xml(data)
    except IdpError as exc:
        raise ValueError(exc.message) from exc
    if root.tag != f"{{{NS_MD}}}EntityDescriptor" or not root.get("entityID"):
        raise ValueError("it is not a SAML EntityDescriptor with an entityID")
    certificates = []
    for descriptor in root.iterfind(f"{{{NS_MD}}}IDPSSODescriptor/{{{NS_MD}}}KeyDescriptor"):
        if descriptor.get("use", "signing") != "signing":
            continue
        for element in descriptor.iterfind(
            f"{{{NS_DS}}}KeyInfo/{{{NS_DS}}}X509Data/{{{NS_DS}}}X509Certificate"
        ):
            try:
                certificates.append(base64.b64decode("".join((element.text or "").split()), validate=True))
            except ValueError as exc:
                raise ValueError("a certificate in it is not base64") from exc
    return ProviderMetadata(entity_id=str(root.get("entityID")), certificates=tuple(certificates))


def _fingerprints(certificates: Iterable[bytes]) -> str:
    """SHA-256 fingerprints, shortened to 8 bytes: enough to tell certificates apart in a report."""
    shown = [
        ":".join(f"{byte:02X}" for byte in hashlib.sha256(der).digest()[:8]) + "…" for der in certificates
    ]
    return ", ".join(shown) or "(none)"


def _error_code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    return response.get("Error", {}).get("Code") if isinstance(response, Mapping) else None


# ---------------------------------------------------------------- roles


@dataclass(frozen=True)
class TrustGap:
    status: str  # PROBLEM or WARNING
    sentence: str  # completes "The trust policy of role R (app A) ..."


def check_roles(target: Target, aws_apps: Sequence[Any]) -> list[Finding]:
    """Every role an AWS app of this account maps exists, trusts the app's provider as AWS
    requires, and allows sessions as long as the app asks for."""
    from idp_core import aws
    from idp_core.apps import account_of, provider_arn_in, role_arn

    iam = aws.client("iam")
    roles: dict[str, dict[str, Any] | None] = {}
    findings: list[Finding] = []
    for app in aws_apps:
        for mapping in app.roles:
            # A role of another account is checked with that account's credentials.
            if account_of(app, mapping) != target.account_id:
                continue
            arn = role_arn(target.account_id, mapping.role)
            name = arn.rsplit("/", 1)[-1]
            if name not in roles:
                roles[name] = _get_role(iam, name)
            findings += _check_role(target, app, arn, roles[name], provider_arn_in(target.account_id, app))
    return findings


def _get_role(iam: Any, name: str) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    try:
        role: dict[str, Any] = iam.get_role(RoleName=name)["Role"]
    except ClientError as exc:
        if _error_code(exc) in _NOT_FOUND:
            return None
        raise
    return role


def _check_role(
    target: Target, app: Any, arn: str, role: Mapping[str, Any] | None, provider: str
) -> list[Finding]:
    from idp_core.apps import saml_trust_policy

    name = arn.rsplit("/", 1)[-1]
    about = f"role {name} (app {app.name})"
    duration = int(app.session_duration)
    policy = json.dumps(saml_trust_policy(provider, app.acs_url), separators=(",", ":"))
    if role is None:
        return [
            Finding(
                ROLE,
                PROBLEM,
                f"The {about} does not exist: AWS refuses the sign-in of everyone mapped to it.",
                f"{target.aws} iam create-role --role-name {name} --max-session-duration "
                f"{max(duration, 3600)} --assume-role-policy-document '{policy}'\n"
                "then attach the permissions the group should have.",
            )
        ]
    if role.get("Arn") != arn:
        return [
            Finding(
                ROLE,
                PROBLEM,
                f"The {about} is {role.get('Arn')}, but the app maps {arn} (another path): AWS refuses the "
                "sign-in.",
                f"Map the role by its ARN in the app (idp app add-aws ... --role {role.get('Arn')}=GROUP).",
            )
        ]
    fix = (
        f"{target.aws} iam update-assume-role-policy --role-name {name} --policy-document '{policy}'\n"
        "(this replaces the trust policy: keep any other statement you need in it)"
    )
    findings = [
        Finding(ROLE, gap.status, f"The trust policy of {about} {gap.sentence}", fix)
        for gap in trust_policy_gaps(role.get("AssumeRolePolicyDocument"), provider, app.acs_url)
    ]
    longest = int(role.get("MaxSessionDuration") or DEFAULT_MAX_SESSION_SECONDS)
    if longest < duration:
        findings.append(
            Finding(
                ROLE,
                PROBLEM,
                f"The {about} allows sessions of at most {longest} s, but the app asks for {duration} s: "
                "AWS refuses the sign-in.",
                f"{target.aws} iam update-role --role-name {name} --max-session-duration {duration}\n"
                "or give the app a shorter --session-duration.",
            )
        )
    if not findings:
        findings.append(
            Finding(
                ROLE,
                OK,
                f"The {about} trusts {provider} for {app.acs_url} with session tags, and its sessions (at "
                f"most {longest} s) cover the app's {duration} s.",
            )
        )
    return findings


def trust_policy_gaps(document: Any, provider: str, audience: str) -> list[TrustGap]:
    """What a role's trust policy lacks for sign-ins through ``provider`` to ``audience`` (the
    app's ACS URL, which AWS compares with the SAML:aud condition), as the README's policy has it."""
    statements = [
        statement
        for statement in _statements(document)
        if statement.get("Effect") == "Allow" and provider in _as_list(_federated(statement))
    ]
    if not statements:
        return [
            TrustGap(
                PROBLEM,
                f"does not trust the IAM SAML provider {provider} (no Allow statement with it as Federated "
                "principal): AWS refuses every sign-in to the role.",
            )
        ]
    denied = [
        statement
        for statement in _statements(document)
        if statement.get("Effect") == "Deny"
        and "Condition" not in statement
        and (provider in _as_list(_federated(statement)) or statement.get("Principal") == "*")
        and _allows(statement, "sts:AssumeRoleWithSAML")
    ]
    if denied:
        return [
            TrustGap(
                PROBLEM,
                f"denies sts:AssumeRoleWithSAML to {provider} outright, which overrides any Allow: AWS "
                "refuses every sign-in to the role.",
            )
        ]
    assume = [statement for statement in statements if _allows(statement, "sts:AssumeRoleWithSAML")]
    if not assume:
        return [
            TrustGap(
                PROBLEM,
                f"does not allow sts:AssumeRoleWithSAML for {provider}: AWS refuses every sign-in to the "
                "role.",
            )
        ]
    gaps = []
    pinned = [_audiences(statement) for statement in assume]
    if not any(audiences is not None and _matches(audiences, audience) for audiences in pinned):
        if any(audiences is None for audiences in pinned):
            gaps.append(
                TrustGap(
                    PROBLEM,
                    "allows sts:AssumeRoleWithSAML without a SAML:aud condition: it does not pin the "
                    f"sign-in endpoint ({audience}) that assertions must be addressed to.",
                )
            )
        else:
            required = ", ".join(
                sorted({value for audiences in pinned if audiences for _, value in audiences})
            )
            gaps.append(
                TrustGap(
                    PROBLEM,
                    f"requires SAML:aud {required}, but the app's assertions go to {audience}: AWS refuses "
                    "the sign-in.",
                )
            )
    if not any(_allows(statement, "sts:TagSession") for statement in statements):
        gaps.append(
            TrustGap(
                PROBLEM,
                "does not allow sts:TagSession: AWS refuses sign-ins whose assertions carry session tags "
                "(directory attributes sent as PrincipalTag).",
            )
        )
    if not any(_allows(statement, "sts:SetSourceIdentity") for statement in statements):
        gaps.append(
            TrustGap(
                PROBLEM,
                "does not allow sts:SetSourceIdentity: AWS refuses every sign-in, since the assertions "
                "carry the username as SourceIdentity.",
            )
        )
    return gaps


def _statements(document: Any) -> list[dict[str, Any]]:
    if isinstance(document, str):
        # IAM returns the policy URL-encoded; some SDKs decode it, some do not.
        try:
            document = json.loads(unquote(document))
        except ValueError:
            return []
    if not isinstance(document, dict):
        return []
    return [statement for statement in _as_list(document.get("Statement")) if isinstance(statement, dict)]


def _federated(statement: Mapping[str, Any]) -> Any:
    principal = statement.get("Principal")
    return principal.get("Federated") if isinstance(principal, dict) else None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _allows(statement: Mapping[str, Any], action: str) -> bool:
    # IAM action names are case-insensitive and may use * and ? wildcards.
    return any(
        isinstance(pattern, str) and fnmatch.fnmatchcase(action.lower(), pattern.lower())
        for pattern in _as_list(statement.get("Action"))
    )


def _audiences(statement: Mapping[str, Any]) -> list[tuple[str, str]] | None:
    """The (operator, value) pairs of the statement's SAML:aud conditions; None if it has none."""
    found: list[tuple[str, str]] = []
    conditions = statement.get("Condition")
    for operator, keys in conditions.items() if isinstance(conditions, dict) else ():
        if not isinstance(keys, dict):
            continue
        for key, values in keys.items():
            if key.lower() == "saml:aud":
                found += [(operator.split(":")[-1], str(value)) for value in _as_list(values)]
    return found or None


def _matches(audiences: Sequence[tuple[str, str]], audience: str) -> bool:
    for operator, value in audiences:
        if operator == "StringEquals" and value == audience:
            return True
        if operator == "StringLike" and fnmatch.fnmatchcase(audience, value):
            return True
    return False


# ---------------------------------------------------------------- SES


def check_email(target: Target) -> list[Finding]:
    """The sender of codes and notices is verified in SES, and the account may mail anyone."""
    from idp_core import aws

    address, domain = target.messaging.email_address, target.messaging.email_domain
    if not address or not domain:
        return [
            Finding(
                EMAIL,
                WARNING,
                "No e-mail sender is configured: e-mail codes, notices and alerts cannot be sent.",
                "make deploy CDK_ARGS='-c emailSender=idp@example.com' (an address of an SES-verified "
                "identity)",
            )
        ]
    statuses = aws.client("ses").get_identity_verification_attributes(Identities=[address, domain])[
        "VerificationAttributes"
    ]
    verified = [
        identity
        for identity in (address, domain)
        if statuses.get(identity, {}).get("VerificationStatus") == "Success"
    ]
    findings = []
    if verified:
        findings.append(
            Finding(
                EMAIL,
                OK,
                f"The SES sender {address} is verified in {target.region} (identity {verified[0]}).",
            )
        )
    else:
        known = [
            f"{identity}: {statuses[identity]['VerificationStatus']}"
            for identity in (address, domain)
            if identity in statuses
        ]
        state = "; ".join(known) if known else "neither the address nor its domain is an SES identity"
        findings.append(
            Finding(
                EMAIL,
                PROBLEM,
                f"The SES sender {address} is not verified in {target.region} ({state}): SES refuses to "
                "send codes and notices from it.",
                f"{target.aws} sesv2 create-email-identity --email-identity {domain}"
                "   (then publish the DKIM records SES shows)\n"
                f"or {target.aws} sesv2 create-email-identity --email-identity {address}"
                "   (README: Leaving the SES sandbox)",
            )
        )
    account = aws.client("sesv2").get_account()
    quota = account.get("SendQuota", {})
    if not account.get("SendingEnabled", True):
        findings.append(
            Finding(
                EMAIL,
                PROBLEM,
                f"Sending is paused for the SES account in {target.region} (enforcement status "
                f"{account.get('EnforcementStatus')}): no code or notice goes out.",
                f"See the SES console's Account dashboard for the reason, then {target.aws} sesv2 "
                "put-account-sending-attributes --sending-enabled",
            )
        )
    if account.get("ProductionAccessEnabled"):
        findings.append(
            Finding(
                EMAIL,
                OK,
                f"SES in {target.region} has production access ({quota.get('Max24HourSend', 0):.0f} "
                f"messages a day, {quota.get('MaxSendRate', 0):.0f} a second).",
            )
        )
    else:
        review = account.get("Details", {}).get("ReviewDetails", {}).get("Status")
        findings.append(
            Finding(
                EMAIL,
                PROBLEM,
                f"SES in {target.region} is in its sandbox: codes and notices reach only verified addresses, "
                f"at most {quota.get('Max24HourSend', 200):.0f} a day"
                + (f" (a request for production access is {review.lower()})." if review else "."),
                f"SES console > Account dashboard > Request production access, or {target.aws} sesv2 "
                "put-account-details --production-access-enabled --mail-type TRANSACTIONAL --website-url "
                "URL --use-case-description TEXT   (README: Leaving the SES sandbox)",
            )
        )
    return findings


# ---------------------------------------------------------------- SNS SMS


def check_sms(target: Target) -> list[Finding]:
    """Where SMS codes are allowed, SNS may text anyone and has money to do it."""
    from idp_core import aws
    from idp_core.mfa import policy

    if "sms" not in policy.load_settings().allowed_methods:
        return [
            Finding(
                SMS, OK, "SMS is not an allowed second factor (idp mfa settings), so SNS SMS does not matter."
            )
        ]
    sns = aws.client("sns")
    findings = []
    if sns.get_sms_sandbox_account_status()["IsInSandbox"]:
        findings.append(
            Finding(
                SMS,
                PROBLEM,
                f"SNS SMS in {target.region} is in its sandbox: codes go only to the verified sandbox "
                "numbers (at most 10).",
                "SNS console > Text messaging (SMS) > Exit SMS sandbox (a support case; README: Leaving "
                "the SNS SMS sandbox)",
            )
        )
    else:
        findings.append(Finding(SMS, OK, f"SNS SMS in {target.region} is out of its sandbox."))
    raw = (
        sns.get_sms_attributes(attributes=["MonthlySpendLimit"])
        .get("attributes", {})
        .get("MonthlySpendLimit")
    )
    limit = float(raw) if raw else DEFAULT_SMS_SPEND_LIMIT
    if limit <= DEFAULT_SMS_SPEND_LIMIT:
        findings.append(
            Finding(
                SMS,
                PROBLEM,
                f"The monthly SMS spend limit is USD {limit:g}"
                + ("" if raw else " (the default)")
                + f": SNS stops sending codes once it is spent (about {int(limit / US_SMS_PRICE)} texts to "
                "US numbers).",
                f"Ask AWS Support for a higher SNS text messaging spend limit, then {target.aws} sns "
                "set-sms-attributes --attributes MonthlySpendLimit=AMOUNT",
            )
        )
    else:
        findings.append(Finding(SMS, OK, f"The monthly SMS spend limit is USD {limit:g}."))
    return findings


# ---------------------------------------------------------------- API Gateway and WAF


def check_api_gateway_logging(target: Target) -> list[Finding]:
    """The account-wide role through which API Gateway writes the stage's access logs."""
    from idp_core import aws

    role_arn = aws.client("apigateway").get_account().get("cloudwatchRoleArn")
    name = "ApiGatewayCloudWatchLogs"
    fix = (
        f"{target.aws} iam create-role --role-name {name} --assume-role-policy-document "
        '\'{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"apigateway.amazonaws.com"},'
        '"Action":"sts:AssumeRole"}]}\'\n'
        f"{target.aws} iam attach-role-policy --role-name {name} --policy-arn "
        "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs\n"
        f"{target.aws} apigateway update-account --patch-operations "
        f"op=replace,path=/cloudwatchRoleArn,value=arn:aws:iam::{target.account_id}:role/{name}"
    )
    if not role_arn:
        return [
            Finding(
                API_LOGGING,
                PROBLEM,
                f"API Gateway in {target.region} has no CloudWatch Logs role (the account's "
                "cloudwatchRoleArn): the stage cannot write its access logs, and a stage with access logs "
                "fails to deploy.",
                fix,
            )
        ]
    if _get_role(aws.client("iam"), role_arn.rsplit("/", 1)[-1]) is None:
        return [
            Finding(
                API_LOGGING,
                PROBLEM,
                f"API Gateway in {target.region} writes logs through {role_arn}, which does not exist.",
                fix,
            )
        ]
    return [Finding(API_LOGGING, OK, f"API Gateway in {target.region} writes logs through {role_arn}.")]


def check_waf(target: Target) -> list[Finding]:
    """Every stage of the stack's API is behind an AWS WAF web ACL (the stack's own, unless
    it was deployed with ``-c waf=false``)."""
    from idp_core import aws

    if not target.rest_api_ids:
        return [
            Finding(
                WAF, WARNING, f"{target.label.capitalize()} has no API Gateway REST API to protect.", None
            )
        ]
    apigateway, wafv2 = aws.client("apigateway"), aws.client("wafv2")
    stack_acls = [_web_acl(physical_id, target) for physical_id in target.web_acl_ids]
    findings = []
    for api_id in target.rest_api_ids:
        for stage in apigateway.get_stages(restApiId=api_id).get("item", []):
            stage_arn = f"arn:aws:apigateway:{target.region}::/restapis/{api_id}/stages/{stage['stageName']}"
            about = f"The stage {stage['stageName']} of API {api_id}"
            acl = wafv2.get_web_acl_for_resource(ResourceArn=stage_arn).get("WebACL")
            if acl:
                findings.append(Finding(WAF, OK, f"{about} is behind the AWS WAF web ACL {acl['Name']}."))
            elif stack_acls:
                acl_name, acl_arn = stack_acls[0]
                findings.append(
                    Finding(
                        WAF,
                        PROBLEM,
                        f"{about} is not associated with the stack's AWS WAF web ACL {acl_name}: its per-IP "
                        "rate rules and managed rules do not apply.",
                        f"{target.aws} wafv2 associate-web-acl --web-acl-arn {acl_arn} --resource-arn "
                        f"{stage_arn}\n"
                        "or redeploy the stack (make deploy).",
                    )
                )
            else:
                findings.append(
                    Finding(
                        WAF,
                        WARNING,
                        f"{about} has no AWS WAF web ACL (the stack was deployed with -c waf=false): one "
                        "client can use up the stage's throttle and lock everyone out with 429 answers.",
                        "make deploy   (WAF is on by default; leave out -c waf=false)",
                    )
                )
    return findings


def _web_acl(physical_id: str, target: Target) -> tuple[str, str]:
    """The name and ARN of a web ACL from its CloudFormation physical id (``name|id|scope``)."""
    if physical_id.startswith("arn:"):
        return physical_id.split("/")[-2], physical_id
    name, acl_id, *_ = [*physical_id.split("|"), "", ""]
    return name, f"arn:aws:wafv2:{target.region}:{target.account_id}:regional/webacl/{name}/{acl_id}"
