"""A regional AWS WAF web ACL on the API stage: per-address rate limits, tighter where
passwords and codes are tried, and AWS's managed common and known-bad-inputs rules."""

from __future__ import annotations

from typing import Any

from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from infra.constructs.api import STAGE_NAME

# Requests per address in RATE_WINDOW_SECONDS. The sign-in limit still lets an office behind
# one NAT address sign in a few hundred people in five minutes (a sign-in is 2-3 requests on
# these paths); the per-account lockout, not this, is what stops password guessing.
SIGN_IN_RATE_LIMIT = 300
REQUEST_RATE_LIMIT = 3000
RATE_WINDOW_SECONDS = 300
# Where passwords and codes are checked: the sign-in form, the second-factor challenge
# (/mfa, /mfa/send, /mfa/verify) and the password change.
SIGN_IN_PATHS = ("/login", "/mfa", "/me/password")

# Rules of AWSManagedRulesCommonRuleSet that would block legitimate requests of this IdP;
# they only count (visible in the WAF metrics and sampled requests).
COMMON_RULES_COUNTED = (
    # 8 KB: an SP's metadata XML or a directory's CA certificate chain pasted in the admin
    # console, and a SAMLRequest posted with the POST binding, exceed it. The functions cap
    # every field themselves (S20, S26).
    "SizeRestrictions_BODY",
    # SAML messages and metadata are XML, whose angle brackets look like markup to this rule;
    # the pages escape everything they show and send a strict Content-Security-Policy.
    "CrossSiteScripting_BODY",
    # 2 KB: a signed SAMLRequest with the HTTP-Redirect binding (request, RelayState, SigAlg
    # and a 2048-bit signature) reaches it.
    "SizeRestrictions_QUERYSTRING",
)


class WebFirewall(Construct):
    """One web ACL, associated with the stage; the default action allows.

    Rules, cheapest first: a per-address rate limit on the sign-in paths (with or without
    the stage prefix, since the execute-api URL carries ``/prod``), a per-address limit on
    everything, AWS's known-bad-inputs group and AWS's common rule set with the counted
    rules above. A blocked request gets API Gateway's 403 with the security headers.
    """

    def __init__(self, scope: Construct, construct_id: str, *, stage: apigateway.Stage) -> None:
        super().__init__(scope, construct_id)
        self.web_acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            description="serverless IdP: per-address rate limits and AWS managed rules",
            visibility_config=_visibility("ServerlessIdpWebAcl"),
            rules=[
                _rate_rule("SignInRateLimit", 0, SIGN_IN_RATE_LIMIT, scope_down=_sign_in_paths()),
                _rate_rule("RequestRateLimit", 1, REQUEST_RATE_LIMIT),
                _managed_rule("AWSManagedRulesKnownBadInputsRuleSet", 2),
                _managed_rule("AWSManagedRulesCommonRuleSet", 3, counted=COMMON_RULES_COUNTED),
            ],
        )
        self.association = wafv2.CfnWebACLAssociation(
            self, "Association", resource_arn=stage.stage_arn, web_acl_arn=self.web_acl.attr_arn
        )
        # The stage must exist before WAF can attach to it.
        self.association.node.add_dependency(stage)


def _visibility(metric_name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=metric_name, sampled_requests_enabled=True
    )


def _sign_in_paths() -> wafv2.CfnWebACL.StatementProperty:
    prefixes = [path for base in SIGN_IN_PATHS for path in (base, f"/{STAGE_NAME}{base}")]
    return wafv2.CfnWebACL.StatementProperty(
        or_statement=wafv2.CfnWebACL.OrStatementProperty(
            statements=[
                wafv2.CfnWebACL.StatementProperty(
                    byte_match_statement=wafv2.CfnWebACL.ByteMatchStatementProperty(
                        field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(uri_path={}),
                        positional_constraint="STARTS_WITH",
                        search_string=prefix,
                        # Encoded or upper-case spellings of a path count the same.
                        text_transformations=[
                            wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="URL_DECODE"),
                            wafv2.CfnWebACL.TextTransformationProperty(priority=1, type="LOWERCASE"),
                        ],
                    )
                )
                for prefix in prefixes
            ]
        )
    )


def _rate_rule(
    name: str, priority: int, limit: int, *, scope_down: wafv2.CfnWebACL.StatementProperty | None = None
) -> wafv2.CfnWebACL.RuleProperty:
    return wafv2.CfnWebACL.RuleProperty(
        name=name,
        priority=priority,
        action=wafv2.CfnWebACL.RuleActionProperty(block={}),
        statement=wafv2.CfnWebACL.StatementProperty(
            rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                aggregate_key_type="IP",
                limit=limit,
                evaluation_window_sec=RATE_WINDOW_SECONDS,
                scope_down_statement=scope_down,
            )
        ),
        visibility_config=_visibility(name),
    )


def _managed_rule(
    group: str, priority: int, *, counted: tuple[str, ...] = ()
) -> wafv2.CfnWebACL.RuleProperty:
    overrides: list[Any] = [
        wafv2.CfnWebACL.RuleActionOverrideProperty(
            name=rule, action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={})
        )
        for rule in counted
    ]
    return wafv2.CfnWebACL.RuleProperty(
        name=group,
        priority=priority,
        override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
        statement=wafv2.CfnWebACL.StatementProperty(
            managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                vendor_name="AWS", name=group, rule_action_overrides=overrides or None
            )
        ),
        visibility_config=_visibility(group),
    )
