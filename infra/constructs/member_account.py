"""What a member account needs for the IdP's AWS apps, for CDK users: the IAM SAML provider
holding the IdP's metadata and each mapped role trusting it. The same resources, conditions and
logical ids as ``idp aws member-template`` prints (idp_core.member_accounts), so a CDK app and a
StackSet of the printed template manage the same things alike."""

from __future__ import annotations

from typing import cast

from aws_cdk import Aws, CfnCondition, Fn, ICfnConditionExpression
from aws_cdk import aws_iam as iam
from constructs import Construct

from idp_core.member_accounts import (
    MAX_OR_CONDITIONS,
    MemberAccounts,
    MemberRole,
    account_condition,
    logical_id,
    role_description,
    trust_policy,
)


class MemberAccount(Construct):
    """The providers and roles of ``members`` (``member_accounts(apps)``, or built by hand from
    ``MemberRole``s); each exists only in the accounts that need it, so one stack, or one
    StackSet, serves every account.

    ``providers`` and ``roles`` give the L1 resources by provider name and by (account, role name).
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, metadata_xml: str, members: MemberAccounts
    ) -> None:
        super().__init__(scope, construct_id)
        accounts = {account: self._account_condition(account) for account in members.accounts}
        self.providers: dict[str, iam.CfnSAMLProvider] = {}
        for provider in members.providers:
            provider_id = logical_id("SamlProvider", provider.name)
            resource = iam.CfnSAMLProvider(
                self, provider_id, name=provider.name, saml_metadata_document=metadata_xml
            )
            resource.override_logical_id(provider_id)
            if len(provider.accounts) == 1:
                resource.cfn_options.condition = accounts[provider.accounts[0]]
            else:
                needs = CfnCondition(
                    self, f"Needs{provider_id}", expression=_any_of([accounts[a] for a in provider.accounts])
                )
                needs.override_logical_id(f"Needs{provider_id}")
                resource.cfn_options.condition = needs
            self.providers[provider.name] = resource
        self.roles: dict[tuple[str, str], iam.CfnRole] = {}
        for role in members.roles:
            self.roles[(role.account_id, role.name)] = self._role(role, accounts[role.account_id])

    def _account_condition(self, account: str) -> CfnCondition:
        condition = CfnCondition(
            self, account_condition(account), expression=Fn.condition_equals(Aws.ACCOUNT_ID, account)
        )
        condition.override_logical_id(account_condition(account))
        return condition

    def _role(self, role: MemberRole, condition: CfnCondition) -> iam.CfnRole:
        role_id = logical_id("Role", role.account_id, role.path, role.name)
        resource = iam.CfnRole(
            self,
            role_id,
            role_name=role.name,
            path=role.path,
            description=role_description(role),
            max_session_duration=role.max_session_duration,
            assume_role_policy_document=trust_policy(role, self.providers[role.provider_name].ref),
        )
        resource.override_logical_id(role_id)
        resource.cfn_options.condition = condition
        return resource


def _any_of(conditions: list[CfnCondition]) -> ICfnConditionExpression:
    """Fn::Or over the conditions, nested beyond ten as idp_core.member_accounts nests them."""
    # A CfnCondition is a condition expression (jsii's interfaces escape mypy's structural check).
    expressions = [cast(ICfnConditionExpression, condition) for condition in conditions]
    while len(expressions) > MAX_OR_CONDITIONS:
        expressions = [
            _or(expressions[start : start + MAX_OR_CONDITIONS])
            for start in range(0, len(expressions), MAX_OR_CONDITIONS)
        ]
    return _or(expressions)


def _or(expressions: list[ICfnConditionExpression]) -> ICfnConditionExpression:
    return expressions[0] if len(expressions) == 1 else Fn.condition_or(*expressions)
