"""``idp signing-key rotate start|status|finish``: roll the SAML signing key over to the
deployment's other KMS key without a failed sign-in (idp_core.saml.signing_keys).

``start`` publishes the next certificate beside the signing one; the admins of each IAM SAML
provider then upload the new metadata (a provider holds several certificates and accepts a
signature by any of them). ``status`` tells which providers of the AWS apps hold the next
certificate; ``finish`` switches signing once they all do (``--force`` to switch anyway) and
drops the old certificate from the metadata; ``finish --schedule-deletion DAYS`` later deletes
the retired key, only when asked.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from urllib.error import URLError
from urllib.request import urlopen

from idp_cli.stack import OnStack, add_command
from idp_cli.terminal import (
    EXIT_FAILURE,
    Parser,
    Subcommands,
    UsageError,
    add_noun,
    details,
    print_json,
    table,
)
from idp_core.clock import SYSTEM_CLOCK
from idp_core.saml.signing_keys import RotationRefused

# IAM answers these for a provider that does not exist (moto: the last one).
_NOT_FOUND = frozenset({"NoSuchEntity", "NotFoundException", "NotFound"})


@dataclass(frozen=True)
class ProviderHolding:
    """What one IAM SAML provider of the AWS apps holds, as far as this account can read it."""

    arn: str
    apps: tuple[str, ...]
    holds: tuple[str, ...]  # the key ids (signing, next, retired) whose certificates it holds
    problem: str | None = None  # why it could not be read

    def holds_key(self, key_id: str | None) -> bool:
        return key_id is not None and key_id in self.holds


def add_parser(commands: Subcommands) -> None:
    noun = add_noun(commands, "signing-key", "roll the SAML signing key over to the deployment's other key")
    rotate = noun.add_parser("rotate", help="start, follow and finish a signing key rotation")
    steps: Subcommands = rotate.add_subparsers(dest="step", metavar="STEP", parser_class=Parser)
    steps.required = True
    add_command(steps, "start", "publish the next signing certificate beside the current one", start)
    add_command(
        steps,
        "status",
        "which key signs, which are published, which SAML providers hold the next one",
        status,
        with_json=True,
    )
    finish_parser = add_command(steps, "finish", "sign with the next key and retire the old one", finish)
    finish_parser.add_argument(
        "--force",
        action="store_true",
        help="switch even though some SAML providers lack the next certificate",
    )
    finish_parser.add_argument(
        "--schedule-deletion",
        type=int,
        metavar="DAYS",
        help="after a finished rotation: delete the retired key in DAYS (7-30) days",
    )


def start(cmd: OnStack) -> int | None:
    import boto3

    from idp_core.saml.signing_keys import start_rotation

    settings = cmd.settings
    try:
        keys = start_rotation(
            boto3.client("kms"),
            settings.signing_key_ids,
            context=cmd.context,
            clock=SYSTEM_CLOCK,
        )
    except RotationRefused as exc:
        cmd.err.write(f"idp: {exc.message}\n")
        return EXIT_FAILURE
    cmd.out.write(f"Rotation started: {keys.next} is published beside {keys.signing}, which still signs.\n")
    problem = _make_certificates(settings.public_base_url)
    if problem:
        cmd.out.write(f"The next certificate is not made yet ({problem}); open the metadata URL once.\n")
    cmd.out.write(
        "Upload the new metadata (idp metadata) to every IAM SAML provider, check with "
        "`idp signing-key rotate status`, then run `idp signing-key rotate finish`.\n"
    )
    return None


def status(cmd: OnStack) -> int | None:
    from idp_core.saml.signing_keys import current_keys

    keys = current_keys(cmd.settings.signing_key_ids, fresh=True)
    holdings = provider_holdings(keys.signing, keys.next, keys.retired)
    if cmd.args.json:
        print_json(
            cmd.out,
            {
                "signing": keys.signing,
                "next": keys.next,
                "retired": keys.retired,
                "published": list(keys.published),
                "providers": [
                    {**asdict(holding), "holds_next": holding.holds_key(keys.next)} for holding in holdings
                ],
            },
        )
        return None
    details(
        cmd.out,
        {
            "signing": keys.signing,
            "next": keys.next,
            "retired": keys.retired,
            "published": list(keys.published),
            "rotation": "under way" if keys.next else "none",
        },
    )
    cmd.out.write("\n")
    table(
        cmd.out,
        ["PROVIDER", "APPS", "HOLDS", "HOLDS NEXT"],
        [
            [
                holding.arn,
                list(holding.apps),
                holding.problem or list(holding.holds),
                holding.holds_key(keys.next) if keys.next else None,
            ]
            for holding in holdings
        ],
    )
    return None


def finish(cmd: OnStack) -> int | None:
    import boto3

    from idp_core.saml.signing_keys import current_keys, finish_rotation, schedule_retired_deletion

    keys = current_keys(cmd.settings.signing_key_ids, fresh=True)
    days = cmd.args.schedule_deletion
    if days is not None and keys.next is not None:
        raise UsageError(
            "Finish the rotation first; warm functions may sign with the old key for a minute after the "
            "switch, so schedule its deletion afterwards with `finish --schedule-deletion DAYS`."
        )
    try:
        if days is not None:
            retired = schedule_retired_deletion(
                boto3.client("kms"),
                cmd.settings.signing_key_ids,
                days=days,
                context=cmd.context,
                clock=SYSTEM_CLOCK,
            )
            cmd.out.write(f"The retired signing key {retired} will be deleted in {days} days.\n")
            return None
        holdings = provider_holdings(keys.signing, keys.next, keys.retired)
        lacking = [holding.arn for holding in holdings if not holding.holds_key(keys.next)]
        finished = finish_rotation(
            cmd.settings.signing_key_ids,
            lacking=lacking,
            force=cmd.args.force,
            context=cmd.context,
            clock=SYSTEM_CLOCK,
        )
    except RotationRefused as exc:
        cmd.err.write(f"idp: {exc.message}\n")
        return EXIT_FAILURE
    cmd.out.write(
        f"{finished.signing} signs now; {finished.retired} is no longer published. Once every SAML "
        "provider holds the new metadata alone, the old key can go: `idp signing-key rotate finish "
        "--schedule-deletion 30`.\n"
    )
    return None


def provider_holdings(signing: str, following: str | None, retired: str | None) -> list[ProviderHolding]:
    """For each IAM SAML provider the AWS apps name, which of the keys' certificates it holds."""
    import boto3

    from idp_core import apps

    known = _certificates({key for key in (signing, following, retired) if key})
    account = boto3.client("sts").get_caller_identity()["Account"]
    by_provider: dict[str, list[str]] = {}
    for app in apps.list_apps():
        if app.kind == apps.AWS_APP_KIND:
            for account_id in apps.accounts_of(app):  # Each account of the app has its provider.
                by_provider.setdefault(apps.provider_arn_in(account_id, app), []).append(app.name)
    return [_holding(arn, tuple(names), known, account) for arn, names in sorted(by_provider.items())]


def _holding(arn: str, app_names: tuple[str, ...], known: dict[bytes, str], account: str) -> ProviderHolding:
    import boto3
    from botocore.exceptions import ClientError

    from idp_cli.doctor import parse_provider_metadata

    provider_account = arn.split(":")[4]
    if provider_account != account:
        problem = f"in account {provider_account}: not readable with these credentials ({account})"
        return ProviderHolding(arn, app_names, (), problem)
    try:
        document = boto3.client("iam").get_saml_provider(SAMLProviderArn=arn)["SAMLMetadataDocument"]
        held = parse_provider_metadata(document).certificates
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in _NOT_FOUND:
            raise
        return ProviderHolding(arn, app_names, (), "does not exist")
    except ValueError as exc:
        return ProviderHolding(arn, app_names, (), f"holds unreadable metadata: {exc}")
    return ProviderHolding(arn, app_names, tuple(known[der] for der in held if der in known))


def _certificates(key_ids: set[str]) -> dict[bytes, str]:
    """The DER of each key's stored certificate, to its key id."""
    from cryptography.hazmat.primitives import serialization

    from idp_core.saml.certificate import stored_certificate

    found: dict[bytes, str] = {}
    for key_id in sorted(key_ids):
        certificate = stored_certificate(key_id)
        if certificate is not None:
            found[certificate.public_bytes(serialization.Encoding.DER)] = key_id
    return found


def _make_certificates(base_url: str | None) -> str | None:
    """Fetch the IdP's metadata once, which makes the next key's certificate: only the sso
    function may sign with the keys (S32), so it makes certificates, not the CLI. A problem's
    description, or None."""
    if not base_url:
        return "the stack's URL is not known"
    url = base_url.rstrip("/") + "/saml/metadata"
    try:
        with urlopen(url, timeout=30) as answer:  # noqa: S310 - the stack's own https URL (or local http).
            answer.read()
    except (URLError, OSError, ValueError) as exc:
        return f"{url} did not answer: {exc}"
    return None
