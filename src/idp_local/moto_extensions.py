"""What the embedded AWS adds to moto, so that ``idp doctor`` gets the answers AWS gives.

moto 5.2 lacks these (found by calling them): SES v2 ``GetAccount`` and
``PutAccountDetails`` (404), SNS ``GetSMSSandboxAccountStatus`` (NotImplementedError), and
CloudFormation support for ``AWS::ApiGateway::Stage``, ``AWS::WAFv2::WebACL``,
``AWS::WAFv2::WebACLAssociation`` and ``AWS::IAM::SAMLProvider`` (skipped with a warning, so a
template's stage, web ACL and SAML provider would silently not exist). The CloudFormation
resources call moto's own API Gateway, WAF and IAM backends, so ``get-stages``,
``get-web-acl-for-resource`` and ``get-saml-provider`` answer as for a deployed stack.

An account starts as a new AWS account does: in the SES sandbox and in the SMS sandbox.
``PutAccountDetails`` with ``ProductionAccessEnabled`` is granted at once (AWS reviews the
request within a day; ``false`` puts the account back, which AWS does not offer). AWS takes an
account out of the SMS sandbox through a support case; here ``set_sms_sandbox`` does it.

STS ``AssumeRoleWithSAML``: moto reads the first Role value of the assertion whatever
``RoleArn`` asks (and fails on several values); AWS assumes the requested role only when the
assertion offers it with the ``PrincipalArn`` provider, and refuses with AccessDenied otherwise.
Once ``check_saml_expiry`` gives it a clock (the local stack's, or a test's), it also refuses an
assertion past its NotOnOrAfter, as AWS does. moto still checks no signature (the AWS sign-in
emulator does, for the console path).

``install()`` patches moto's classes in this process and is idempotent. Every moto server of a
process shares moto's backends, so one call serves the local stack's and the tests' servers.
"""

from __future__ import annotations

import base64
import datetime
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from moto.apigateway.models import apigateway_backends
from moto.core.common_models import CloudFormationModel
from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult
from moto.iam.models import iam_backends
from moto.sts.exceptions import STSClientError
from moto.utilities.utils import get_partition
from moto.wafv2.models import wafv2_backends

from idp_core.clock import Clock

# What SES gives an account in the sandbox and, by default, once it leaves it.
SANDBOX_SEND_QUOTA = {"Max24HourSend": 200.0, "MaxSendRate": 1.0}
PRODUCTION_SEND_QUOTA = {"Max24HourSend": 50000.0, "MaxSendRate": 14.0}
_MAIL_TYPES = ("MARKETING", "TRANSACTIONAL")


@dataclass
class AccountStatus:
    """The sandbox state of one account in one region."""

    ses_production_access: bool = False
    ses_details: dict[str, Any] = field(default_factory=dict)
    sms_in_sandbox: bool = True


_accounts: dict[tuple[str, str], AccountStatus] = {}
_accounts_lock = threading.Lock()
_installed = False


def account_status(account_id: str, region: str) -> AccountStatus:
    with _accounts_lock:
        return _accounts.setdefault((account_id, region), AccountStatus())


def set_sms_sandbox(account_id: str, region: str, in_sandbox: bool) -> None:
    """What AWS Support does when it answers a request to leave (or a return to) the SMS sandbox."""
    account_status(account_id, region).sms_in_sandbox = in_sandbox


# -- SES v2 and SNS operations ---------------------------------------------------------------------


def _sesv2_get_account(self: Any) -> str:
    status = account_status(self.current_account, self.region)
    quota = PRODUCTION_SEND_QUOTA if status.ses_production_access else SANDBOX_SEND_QUOTA
    answer: dict[str, Any] = {
        "DedicatedIpAutoWarmupEnabled": False,
        "EnforcementStatus": "HEALTHY",
        "ProductionAccessEnabled": status.ses_production_access,
        "SendQuota": {**quota, "SentLast24Hours": 0.0},
        "SendingEnabled": True,
        "SuppressionAttributes": {"SuppressedReasons": []},
    }
    if status.ses_details:
        answer["Details"] = status.ses_details
    return json.dumps(answer)


def _sesv2_put_account_details(self: Any) -> str:
    params = json.loads(self.body or "{}")
    if params.get("MailType") not in _MAIL_TYPES or not params.get("WebsiteURL"):
        raise JsonRESTError(
            "BadRequestException", "MailType (MARKETING or TRANSACTIONAL) and WebsiteURL are required."
        )
    status = account_status(self.current_account, self.region)
    if "ProductionAccessEnabled" in params:
        status.ses_production_access = bool(params["ProductionAccessEnabled"])
    status.ses_details = {
        **{
            key: params[key]
            for key in ("MailType", "WebsiteURL", "ContactLanguage", "UseCaseDescription")
            if key in params
        },
        "AdditionalContactEmailAddresses": params.get("AdditionalContactEmailAddresses", []),
        "ReviewDetails": {
            "Status": "GRANTED" if status.ses_production_access else "DENIED",
            "CaseId": "local",
        },
    }
    return "{}"


def _sns_get_sms_sandbox_account_status(self: Any) -> ActionResult:
    return ActionResult({"IsInSandbox": account_status(self.current_account, self.region).sms_in_sandbox})


# -- CloudFormation resources ----------------------------------------------------------------------


class _ResourceDefaults:
    """What the resources below share unless they say otherwise: no name property, no
    attributes, and moto's entry point, which hands the template's properties to ``create``.
    (A mixin: moto finds resource types among CloudFormationModel's direct subclasses only.)"""

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return False

    def is_created(self) -> bool:
        return True

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        return cls.create(cloudformation_json["Properties"], resource_name, account_id, region_name)

    @classmethod
    def create(cls, properties: dict[str, Any], resource_name: str, account_id: str, region_name: str) -> Any:
        raise NotImplementedError


class ApiGatewayStage(_ResourceDefaults, CloudFormationModel):
    """``AWS::ApiGateway::Stage``: its Ref (physical id) is the stage name, as in CloudFormation."""

    def __init__(self, rest_api_id: str, stage_name: str) -> None:
        self.rest_api_id = rest_api_id
        self.physical_resource_id = stage_name

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::ApiGateway::Stage"

    @classmethod
    def create(
        cls, properties: dict[str, Any], resource_name: str, account_id: str, region_name: str
    ) -> ApiGatewayStage:
        rest_api_id, stage_name = properties["RestApiId"], properties["StageName"]
        # moto's Deployment has no physical id, so its Ref resolves to the object itself.
        deployment = properties["DeploymentId"]
        tags = {tag["Key"]: tag["Value"] for tag in properties.get("Tags", [])}
        apigateway_backends[account_id][region_name].create_stage(
            rest_api_id,
            stage_name,
            getattr(deployment, "id", deployment),
            variables=properties.get("Variables"),
            description=properties.get("Description", ""),
            tags=tags or None,
            tracing_enabled=properties.get("TracingEnabled"),
        )
        return cls(rest_api_id, stage_name)

    def delete(self, account_id: str, region_name: str) -> None:
        apigateway_backends[account_id][region_name].delete_stage(self.rest_api_id, self.physical_resource_id)


class WafWebAcl(_ResourceDefaults, CloudFormationModel):
    """``AWS::WAFv2::WebACL``: Ref is ``name|id|scope`` and GetAtt gives Arn and Id, as in CloudFormation."""

    def __init__(self, name: str, acl_id: str, scope: str, arn: str) -> None:
        self.name, self.acl_id, self.scope, self.arn = name, acl_id, scope, arn
        self.physical_resource_id = f"{name}|{acl_id}|{scope}"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::WAFv2::WebACL"

    @staticmethod
    def cloudformation_name_type() -> str:
        return "Name"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in ("Arn", "Id")

    def get_cfn_attribute(self, attribute_name: str) -> str:
        return {"Arn": self.arn, "Id": self.acl_id}[attribute_name]

    @classmethod
    def create(
        cls, properties: dict[str, Any], resource_name: str, account_id: str, region_name: str
    ) -> WafWebAcl:
        acl = wafv2_backends[account_id][region_name].create_web_acl(
            name=properties.get("Name") or resource_name,
            visibility_config=properties["VisibilityConfig"],
            default_action=properties["DefaultAction"],
            scope=properties["Scope"],
            description=properties.get("Description", ""),
            tags=properties.get("Tags", []),
            rules=properties.get("Rules", []),
            association_config=properties.get("AssociationConfig"),
            captcha_config=properties.get("CaptchaConfig"),
            challenge_config=properties.get("ChallengeConfig"),
            custom_response_bodies=properties.get("CustomResponseBodies"),
            token_domains=properties.get("TokenDomains"),
        )
        return cls(acl.name, acl.id, properties["Scope"], acl.arn)

    def delete(self, account_id: str, region_name: str) -> None:
        backend = wafv2_backends[account_id][region_name]
        acl = backend.wacls[self.arn]
        backend.delete_web_acl(self.name, self.scope, self.acl_id, acl.lock_token)


class WafWebAclAssociation(_ResourceDefaults, CloudFormationModel):
    """``AWS::WAFv2::WebACLAssociation`` of a web ACL with a resource (an API Gateway stage)."""

    def __init__(self, web_acl_arn: str, resource_arn: str) -> None:
        self.resource_arn = resource_arn
        self.physical_resource_id = f"{web_acl_arn}|{resource_arn}"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::WAFv2::WebACLAssociation"

    @classmethod
    def create(
        cls, properties: dict[str, Any], resource_name: str, account_id: str, region_name: str
    ) -> WafWebAclAssociation:
        web_acl_arn, resource_arn = properties["WebACLArn"], properties["ResourceArn"]
        wafv2_backends[account_id][region_name].associate_web_acl(web_acl_arn, resource_arn)
        return cls(web_acl_arn, resource_arn)

    def delete(self, account_id: str, region_name: str) -> None:
        wafv2_backends[account_id][region_name].disassociate_web_acl(self.resource_arn)


class IamSamlProvider(_ResourceDefaults, CloudFormationModel):
    """``AWS::IAM::SAMLProvider`` (``idp aws member-template``): Ref and GetAtt Arn give its ARN,
    as in CloudFormation; the provider is moto's own, so IAM's API and the AWS sign-in emulator
    read the metadata the template put there."""

    def __init__(self, arn: str, account_id: str) -> None:
        self.arn, self.account_id = arn, account_id
        self.physical_resource_id = arn

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::IAM::SAMLProvider"

    @staticmethod
    def cloudformation_name_type() -> str:
        return "Name"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Arn"

    def get_cfn_attribute(self, attribute_name: str) -> str:
        return self.arn

    @classmethod
    def create(
        cls, properties: dict[str, Any], resource_name: str, account_id: str, region_name: str
    ) -> IamSamlProvider:
        provider = iam_backends[account_id][get_partition(region_name)].create_saml_provider(
            properties.get("Name") or resource_name, properties["SamlMetadataDocument"]
        )
        return cls(provider.arn, account_id)

    def delete(self, account_id: str, region_name: str) -> None:
        iam_backends[account_id][get_partition(region_name)].delete_saml_provider(self.arn)


# DynamoDB's TransactWriteItems idempotency (moto ignores ClientRequestToken): a request repeated
# with the same token within ten minutes succeeds without applying again. Without it, a client
# that retries a transaction whose answer timed out fails the conditions its first attempt
# already met, which real DynamoDB does not do.
IDEMPOTENCY_SECONDS = 600
_transactions_seen: dict[str, tuple[float, str]] = {}
_transactions_lock = threading.Lock()


class IdempotentParameterMismatch(JsonRESTError):
    code = 400

    def __init__(self) -> None:
        super().__init__(
            "com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException",
            "The request uses the same client token as a previous, but non-identical request.",
        )


def _idempotent_transact_write_items(original: Any) -> Any:
    def transact_write_items(self: Any) -> Any:
        token = self.body.get("ClientRequestToken")
        if not token:
            return original(self)
        request = json.dumps(self.body.get("TransactItems"), sort_keys=True)
        now = time.monotonic()
        with _transactions_lock:
            for seen_token, (at, _) in list(_transactions_seen.items()):
                if now - at > IDEMPOTENCY_SECONDS:
                    del _transactions_seen[seen_token]
            seen = _transactions_seen.get(token)
        if seen is not None:
            if seen[1] != request:
                raise IdempotentParameterMismatch()
            return ActionResult({"ConsumedCapacity": [], "ItemCollectionMetrics": {}})
        answer = original(self)
        with _transactions_lock:
            _transactions_seen[token] = (now, request)
        return answer

    return transact_write_items


# -- STS AssumeRoleWithSAML -----------------------------------------------------------------------


# The clock by which the embedded STS refuses expired SAML assertions; None: no check, as moto.
_saml_clock: Clock | None = None


def check_saml_expiry(clock: Clock | None) -> None:
    """From now on, STS AssumeRoleWithSAML refuses an assertion whose NotOnOrAfter has passed by
    ``clock`` (None: accepts it, as moto does)."""
    global _saml_clock
    _saml_clock = clock


def _refuse_expired(root: Any, clock: Clock) -> None:
    from idp_core.saml.xml import NS_SAML

    for element in root.iterfind(f".//{{{NS_SAML}}}SubjectConfirmationData[@NotOnOrAfter]"):
        ends = datetime.datetime.fromisoformat(element.get("NotOnOrAfter").replace("Z", "+00:00"))
        if clock.now() >= ends.timestamp():
            raise STSClientError(
                "ExpiredTokenException",
                f"The SAML assertion expired at {ends:%Y-%m-%dT%H:%M:%SZ} (its NotOnOrAfter); sign in again.",
            )


def _only_requested_role(saml_assertion: str, role_arn: str, principal_arn: str) -> str:
    """The SAMLResponse with the one Role value that pairs ``role_arn`` with ``principal_arn``;
    AccessDenied when the assertion offers no such pair, as at AWS."""
    from lxml import etree

    from idp_core.errors import IdpError
    from idp_core.saml.aws import ATTR_ROLE
    from idp_core.saml.xml import NS_SAML, parse_xml

    try:
        root = parse_xml(base64.b64decode(saml_assertion))
    except (ValueError, IdpError) as exc:
        raise STSClientError("InvalidIdentityToken", "The SAML assertion is not well-formed XML.") from exc
    if _saml_clock is not None:
        _refuse_expired(root, _saml_clock)
    wanted = {role_arn, principal_arn}
    found = False
    for attribute in root.iterfind(f".//{{{NS_SAML}}}Attribute[@Name='{ATTR_ROLE}']"):
        for value in attribute.findall(f"{{{NS_SAML}}}AttributeValue"):
            pair = {part.strip() for part in (value.text or "").split(",")}
            if pair == wanted and not found:
                found = True
            else:
                attribute.remove(value)
    if not found:
        raise STSClientError(
            "AccessDenied",
            f"Not authorized to perform sts:AssumeRoleWithSAML: the SAML assertion does not offer the "
            f"role {role_arn} with the provider {principal_arn}.",
        )
    return base64.b64encode(etree.tostring(root)).decode("ascii")


def _assume_only_offered_roles(original: Any) -> Any:
    def assume_role_with_saml(self: Any, **kwargs: Any) -> Any:
        kwargs["saml_assertion"] = _only_requested_role(
            kwargs["saml_assertion"], kwargs["role_arn"], kwargs["principal_arn"]
        )
        return original(self, **kwargs)

    return assume_role_with_saml


def install() -> None:
    """Add the operations and resources above to moto in this process (once)."""
    global _installed
    if _installed:
        return
    from moto.cloudformation.parsing import get_model_map, get_name_type_map
    from moto.dynamodb.responses import DynamoHandler
    from moto.sesv2 import urls as sesv2_urls
    from moto.sesv2.responses import SESV2Response
    from moto.sns.responses import SNSResponse
    from moto.sts.models import STSBackend

    # moto routes a REST path only if its service's urls module lists it (read when the
    # server first serves that service), finds an operation's method on the response class,
    # and a resource type among CloudFormationModel's subclasses (cached, hence cache_clear).
    for path in ("{0}/v2/email/account$", "{0}/v2/email/account/details$"):
        sesv2_urls.url_paths[path] = SESV2Response.dispatch
    SESV2Response.get_account = _sesv2_get_account  # type: ignore[attr-defined]
    SESV2Response.put_account_details = _sesv2_put_account_details  # type: ignore[attr-defined]
    SNSResponse.get_sms_sandbox_account_status = _sns_get_sms_sandbox_account_status  # type: ignore[attr-defined]
    DynamoHandler.transact_write_items = _idempotent_transact_write_items(  # type: ignore[method-assign]
        DynamoHandler.transact_write_items
    )
    STSBackend.assume_role_with_saml = _assume_only_offered_roles(  # type: ignore[method-assign]
        STSBackend.assume_role_with_saml
    )
    get_model_map.cache_clear()
    get_name_type_map.cache_clear()
    _installed = True
