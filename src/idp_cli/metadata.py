"""``idp metadata``: the IdP's SAML metadata, the document each IAM SAML provider holds."""

from __future__ import annotations

from idp_cli.stack import OnStack, add_command
from idp_cli.terminal import Subcommands
from idp_core.clock import SYSTEM_CLOCK
from idp_local.idp_metadata import idp_metadata_xml


def add_parser(commands: Subcommands) -> None:
    add_command(commands, "metadata", "print the IdP's SAML metadata XML", print_metadata)


def print_metadata(cmd: OnStack) -> None:
    import boto3  # here only, as in stack.use_stack: boto3 is slow to import.

    xml = idp_metadata_xml(cmd.settings, boto3.client("kms"), SYSTEM_CLOCK)
    cmd.out.write(xml if xml.endswith("\n") else xml + "\n")
