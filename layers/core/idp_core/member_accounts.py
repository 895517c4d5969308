"""What each AWS account of the AWS apps needs for sign-in, as a CloudFormation template: the
IAM SAML provider holding this IdP's metadata, and each mapped role trusting it with the trust
policy the IdP's assertions need (``apps.saml_trust_policy``: SAML:aud, sts:TagSession,
sts:SetSourceIdentity).

One template serves every account: each resource carries the condition that the stack runs in
an account that needs it, so the same template deploys as a stack in one member account or as
a StackSet across an organization (``stack_set_template`` wraps it for the management account).
``idp aws member-template`` prints these; infra/constructs/member_account.py builds the same
resources for CDK users from ``member_accounts``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from idp_core.apps import AWS_APP_KIND, account_of, role_arn, saml_trust_policy
from idp_core.errors import BadRequest
from idp_core.models import App

TEMPLATE_VERSION = "2010-09-09"
# Fn::Or takes 2 to 10 conditions; larger sets are nested.
MAX_OR_CONDITIONS = 10
MAX_DESCRIPTION_CHARS = 1000  # IAM's limit for a role's description
IAM_MAX_SESSION_SECONDS = 3600  # IAM's default MaxSessionDuration; a role allows at least this.
_NOT_ALPHANUMERIC = re.compile(r"[^A-Za-z0-9]")


@dataclass(frozen=True)
class MemberRole:
    """One role a member account holds for the IdP."""

    account_id: str
    name: str
    path: str
    provider_name: str
    audience: str  # SAML:aud: the ACS URL the assertions are posted to
    max_session_duration: int
    apps: tuple[str, ...]


@dataclass(frozen=True)
class MemberProvider:
    """One IAM SAML provider name, and the accounts that need it."""

    name: str
    accounts: tuple[str, ...]


@dataclass(frozen=True)
class MemberAccounts:
    providers: tuple[MemberProvider, ...]
    roles: tuple[MemberRole, ...]

    @property
    def accounts(self) -> tuple[str, ...]:
        return tuple(sorted({account for provider in self.providers for account in provider.accounts}))


def member_accounts(aws_apps: Sequence[App]) -> MemberAccounts:
    """The providers and roles the AWS apps' mappings need, across their accounts; a role two
    apps map (with the same provider and audience) appears once, with the longer session."""
    aws_apps = [app for app in aws_apps if app.kind == AWS_APP_KIND]
    if not aws_apps:
        raise BadRequest("There is no AWS app: add one with `idp app add-aws` first.")
    roles: dict[tuple[str, str], MemberRole] = {}
    providers: dict[str, list[str]] = {}
    for app in aws_apps:
        for mapping in app.roles:
            account = account_of(app, mapping)
            path_and_name = role_arn(account, mapping.role).split(":role/", 1)[1]
            *path, name = path_and_name.split("/")
            role = MemberRole(
                account_id=account,
                name=name,
                path="/" + "".join(f"{part}/" for part in path),
                provider_name=str(app.provider_name),
                audience=str(app.acs_url),
                max_session_duration=max(int(app.session_duration), IAM_MAX_SESSION_SECONDS),
                apps=(app.name,),
            )
            _add_role(roles, role)
            accounts = providers.setdefault(role.provider_name, [])
            if account not in accounts:
                accounts.append(account)
    return MemberAccounts(
        providers=tuple(
            MemberProvider(name, tuple(sorted(accounts))) for name, accounts in providers.items()
        ),
        roles=tuple(roles.values()),
    )


def _add_role(roles: dict[tuple[str, str], MemberRole], role: MemberRole) -> None:
    key = (role.account_id, role.name)
    known = roles.get(key)
    if known is None:
        roles[key] = role
        return
    if (known.provider_name, known.audience, known.path) != (role.provider_name, role.audience, role.path):
        # One IAM role has one trust policy here; two apps that need different ones would
        # each break the other's sign-ins.
        raise BadRequest(
            f"The role {role.name} of account {role.account_id} is mapped by the apps "
            f"{', '.join(known.apps)} and {role.apps[0]} with different SAML providers, paths or ACS URLs; "
            "give each app its own role."
        )
    roles[key] = MemberRole(
        account_id=role.account_id,
        name=role.name,
        path=role.path,
        provider_name=role.provider_name,
        audience=role.audience,
        max_session_duration=max(known.max_session_duration, role.max_session_duration),
        apps=tuple(dict.fromkeys((*known.apps, *role.apps))),
    )


def logical_id(kind: str, *parts: str) -> str:
    """A CloudFormation logical id: readable, alphanumeric, and unique thanks to a short hash."""
    readable = _NOT_ALPHANUMERIC.sub("", "".join(part.title() for part in parts))[:200]
    digest = hashlib.sha256("/".join(parts).encode("utf-8")).hexdigest()[:8].upper()
    return f"{kind}{readable}{digest}"


def account_condition(account: str) -> str:
    return f"InAccount{account}"


def _any_of(conditions: list[dict[str, Any]]) -> dict[str, Any]:
    """Fn::Or over any number of conditions (one is itself; more than ten nest)."""
    while len(conditions) > MAX_OR_CONDITIONS:
        conditions = [
            _any_of(conditions[start : start + MAX_OR_CONDITIONS])
            for start in range(0, len(conditions), MAX_OR_CONDITIONS)
        ]
    return conditions[0] if len(conditions) == 1 else {"Fn::Or": conditions}


def role_description(role: MemberRole) -> str:
    return f"Signed in to through the IdP's AWS app(s) {', '.join(role.apps)}."[:MAX_DESCRIPTION_CHARS]


def trust_policy(role: MemberRole, provider: Any) -> dict[str, Any]:
    """The trust policy of the console's instructions, whose Federated principal is ``provider``:
    the provider made beside the role (a CloudFormation Ref or a CDK token to it)."""
    policy = saml_trust_policy("", role.audience)
    policy["Statement"][0]["Principal"]["Federated"] = provider
    return policy


def member_template(metadata_xml: str, members: MemberAccounts) -> dict[str, Any]:
    """The CloudFormation template (as a dict) that every member account deploys."""
    conditions: dict[str, Any] = {
        account_condition(account): {"Fn::Equals": [{"Ref": "AWS::AccountId"}, account]}
        for account in members.accounts
    }
    resources: dict[str, Any] = {}
    provider_ids: dict[str, str] = {}
    for provider in members.providers:
        provider_id = logical_id("SamlProvider", provider.name)
        provider_ids[provider.name] = provider_id
        condition = account_condition(provider.accounts[0])
        if len(provider.accounts) > 1:
            condition = f"Needs{provider_id}"
            conditions[condition] = _any_of([{"Condition": account_condition(a)} for a in provider.accounts])
        resources[provider_id] = {
            "Type": "AWS::IAM::SAMLProvider",
            "Condition": condition,
            "Properties": {"Name": provider.name, "SamlMetadataDocument": metadata_xml},
        }
    for role in members.roles:
        # The trust policy of the console's instructions, whose provider is the one made here.
        policy = saml_trust_policy(
            f"arn:aws:iam::{role.account_id}:saml-provider/{role.provider_name}", role.audience
        )
        policy["Statement"][0]["Principal"]["Federated"] = {"Ref": provider_ids[role.provider_name]}
        resources[logical_id("Role", role.account_id, role.path, role.name)] = {
            "Type": "AWS::IAM::Role",
            "Condition": account_condition(role.account_id),
            "Properties": {
                "RoleName": role.name,
                "Path": role.path,
                "Description": role_description(role),
                "MaxSessionDuration": role.max_session_duration,
                "AssumeRolePolicyDocument": trust_policy(role, {"Ref": provider_ids[role.provider_name]}),
            },
        }
    return {
        "AWSTemplateFormatVersion": TEMPLATE_VERSION,
        "Description": (
            "The IAM SAML provider(s) holding the IdP's metadata and the roles its AWS apps map in "
            f"account(s) {', '.join(members.accounts)}. Attach permissions to the roles separately."
        )[:1024],
        "Conditions": conditions,
        "Resources": resources,
        "Outputs": {
            f"{provider_id}Arn": {
                "Condition": resources[provider_id]["Condition"],
                "Description": f"The ARN of the SAML provider {name}.",
                "Value": {"Ref": provider_id},
            }
            for name, provider_id in provider_ids.items()
        },
    }


def stack_set_template(
    member: dict[str, Any], *, stack_set_name: str = "idp-member-accounts"
) -> dict[str, Any]:
    """A management-account template: a service-managed StackSet that deploys ``member`` to
    the accounts of the given organizational units, and to accounts that join them later."""
    body = json.dumps(member, separators=(",", ":"))
    return {
        "AWSTemplateFormatVersion": TEMPLATE_VERSION,
        "Description": "A StackSet deploying the IdP's SAML provider and roles to an organization.",
        "Parameters": {
            "OrganizationalUnitIds": {
                "Type": "CommaDelimitedList",
                "Description": "The organizational units (ou-..., or the root r-...) whose accounts get it.",
            },
            "Region": {
                "Type": "String",
                "Default": "us-east-1",
                "Description": "The region the stack instances run in (IAM is global: one is enough).",
            },
        },
        "Resources": {
            "MemberAccounts": {
                "Type": "AWS::CloudFormation::StackSet",
                "Properties": {
                    "StackSetName": stack_set_name,
                    "Description": "The IdP's SAML provider and roles in each member account.",
                    "PermissionModel": "SERVICE_MANAGED",
                    "AutoDeployment": {"Enabled": True, "RetainStacksOnAccountRemoval": False},
                    "Capabilities": ["CAPABILITY_NAMED_IAM"],
                    "StackInstancesGroup": [
                        {
                            "DeploymentTargets": {"OrganizationalUnitIds": {"Ref": "OrganizationalUnitIds"}},
                            "Regions": [{"Ref": "Region"}],
                        }
                    ],
                    "TemplateBody": body,
                },
            }
        },
    }
