"""``idp aws member-template``: the CloudFormation template each AWS account of the AWS apps
deploys (the IAM SAML provider with this IdP's metadata and the mapped roles), or with ``--org``
the management account's template of a StackSet that deploys it across an organization."""

from __future__ import annotations

import json

from idp_cli.stack import OnStack, add_command
from idp_cli.terminal import Subcommands
from idp_core import apps
from idp_core.clock import SYSTEM_CLOCK
from idp_local.idp_metadata import idp_metadata_xml


def add_member_template(actions: Subcommands) -> None:
    """``member-template`` under the ``idp aws`` noun (``idp_cli.aws``)."""
    parser = add_command(
        actions,
        "member-template",
        "print the CloudFormation template that sets up the AWS apps' accounts",
        print_member_template,
    )
    parser.add_argument("--app", metavar="NAME", help="only this AWS app's roles (default: every AWS app's)")
    parser.add_argument(
        "--org",
        action="store_true",
        help="print a management-account template: a StackSet deploying it to organizational units",
    )


def print_member_template(cmd: OnStack) -> None:
    import boto3  # here only, as in stack.use_stack: boto3 is slow to import.

    from idp_core.member_accounts import member_accounts, member_template, stack_set_template

    chosen = [apps.get_app(cmd.args.app)] if cmd.args.app else apps.list_apps()
    members = member_accounts(chosen)
    metadata = idp_metadata_xml(cmd.settings, boto3.client("kms"), SYSTEM_CLOCK)
    template = member_template(metadata, members)
    if cmd.args.org:
        template = stack_set_template(template)
    cmd.out.write(json.dumps(template, indent=2) + "\n")
