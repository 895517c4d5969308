"""``idp app add-saml|update-saml``: any SAML 2.0 service provider as an app."""

from __future__ import annotations

import argparse
from pathlib import Path

from idp_cli.stack import OnStack, add_command
from idp_cli.terminal import Subcommands, UsageError
from idp_core import saml_apps
from idp_core.saml.sp_metadata import SpMetadata, parse_sp_metadata


def add_parsers(app: Subcommands) -> None:
    add = add_command(app, "add-saml", "add a SAML service provider app", add_saml_app)
    _options(add)
    update = add_command(app, "update-saml", "replace a SAML app's SP settings", update_saml_app)
    _options(update)


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name")
    parser.add_argument("--metadata-file", metavar="FILE", help="the SP's SAML metadata")
    parser.add_argument("--entity-id", help="without metadata: the SP's entity id")
    parser.add_argument("--acs-url", metavar="URL", help="without metadata: the SP's ACS (HTTP-POST)")
    parser.add_argument(
        "--certificate", metavar="FILE", help="without metadata: the SP's signing certificate (PEM)"
    )
    parser.add_argument(
        "--slo-url", metavar="URL", help="without metadata: the SP's single logout URL (HTTP-POST)"
    )
    parser.add_argument("--name-id-format", choices=tuple(saml_apps.NAMEID_FORMATS), default="persistent")
    parser.add_argument(
        "--name-id-source", choices=("username", "email"), help="for --name-id-format unspecified"
    )
    parser.add_argument(
        "--attribute",
        action="append",
        default=[],
        metavar="NAME=FIELD",
        help=f"an attribute from a user field ({', '.join(saml_apps.USER_FIELDS)}); repeatable",
    )
    parser.add_argument("--attribute-name-format", choices=tuple(saml_apps.ATTRNAME_FORMATS))
    parser.add_argument("--sign", choices=saml_apps.SIGNING_CHOICES, default="both", help="what is signed")
    parser.add_argument("--require-signed-requests", action="store_true")
    parser.add_argument(
        "--group", action="append", default=[], help="a group that may use the app; repeatable"
    )
    parser.add_argument("--display-name")


def _sp(args: argparse.Namespace) -> SpMetadata:
    by_hand = args.entity_id or args.acs_url or args.certificate or args.slo_url
    if args.metadata_file and by_hand:
        raise UsageError("Give --metadata-file, or --entity-id and --acs-url, not both.")
    if args.metadata_file:
        return parse_sp_metadata(_read(args.metadata_file))
    if not (args.entity_id and args.acs_url):
        raise UsageError("Give --metadata-file, or --entity-id and --acs-url.")
    certificate = _read(args.certificate).decode("ascii", "replace") if args.certificate else None
    return saml_apps.sp_by_hand(
        entity_id=args.entity_id, acs_url=args.acs_url, certificate=certificate, slo_url=args.slo_url
    )


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"Cannot read {path}: {exc.strerror}.") from exc


def _settings(args: argparse.Namespace) -> saml_apps.SamlAppSettings:
    attributes = []
    for item in args.attribute:
        name, separator, source = item.rpartition("=")
        if not separator or not name.strip():
            raise UsageError(f"--attribute expects NAME=FIELD, got {item!r}.")
        attributes.append((name, source))
    return saml_apps.SamlAppSettings(
        sp=_sp(args),
        name_id_format=args.name_id_format,
        name_id_source=args.name_id_source,
        attributes=attributes,
        attribute_name_format=args.attribute_name_format,
        signing=args.sign,
        require_signed_requests=args.require_signed_requests,
        groups=args.group,
        display_name=args.display_name,
    )


def add_saml_app(cmd: OnStack) -> None:
    app = saml_apps.create_saml_app(cmd.args.name, _settings(cmd.args), context=cmd.context)
    cmd.out.write(
        f"Created SAML app {app.name} for {app.audience}. Give the SP this IdP's metadata (`idp metadata`).\n"
    )


def update_saml_app(cmd: OnStack) -> None:
    app = saml_apps.update_saml_app(cmd.args.name, _settings(cmd.args), context=cmd.context)
    cmd.out.write(f"Updated SAML app {app.name}.\n")
