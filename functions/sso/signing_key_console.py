"""The page code of the admin console's "Signing key" page (``admin_routes.signing_key_page``):
the roll-over of the SAML signing key as idp_core.saml.key_overview reads it, and the CLI
commands of its next step. Apart from the routes, so that the certificates' parser and the
SAML package load with this page, not with the sso function's cold start.

The page only shows: switching keys is the CLI's, because ``finish`` first reads every AWS
app's IAM SAML provider, and the sso function's role has (and must have) no IAM permission.
"""

from __future__ import annotations

from functions.sso.admin_routes import _page
from functions.sso.settings import SsoSettings
from idp_core import web
from idp_core.resolver import Response
from idp_core.saml.key_overview import SigningKeyOverview, Stage, signing_key_overview
from idp_core.saml.signing_keys import SigningKeyStateRefused

TEMPLATE = "signing_key.html"
STATUS = "idp signing-key rotate status"

# Each provider's admin uploads the metadata of now (README "Rotating the signing key").
UPLOAD_METADATA = (
    "idp metadata > idp-metadata.xml",
    "aws iam update-saml-provider --saml-provider-arn ARN --saml-metadata-document file://idp-metadata.xml",
)
# The next step of each stage, as the commands an operator runs.
NEXT_STEPS = {
    Stage.NONE: ["idp signing-key rotate start"],
    Stage.STARTED: [*UPLOAD_METADATA, STATUS, "idp signing-key rotate finish"],
    Stage.FINISHED: [*UPLOAD_METADATA, "idp doctor", "idp signing-key rotate finish --schedule-deletion 30"],
}
ONE_KEY_STEPS = ["make deploy", "idp signing-key rotate start"]


def next_steps(overview: SigningKeyOverview) -> list[str]:
    return ONE_KEY_STEPS if overview.other is None else NEXT_STEPS[overview.stage]


def page(req: web.WebRequest) -> Response[str]:
    metadata_url = req.absolute_url("/saml/metadata")
    try:
        overview = signing_key_overview(SsoSettings.of(req.settings).signing_key_ids)
    except SigningKeyStateRefused as exc:
        # Nothing is signed or published with a foreign key; the admin reads why and what to fix.
        return _page(req, TEMPLATE, status=500, overview=None, metadata_url=metadata_url, error=str(exc))
    return _page(req, TEMPLATE, overview=overview, steps=next_steps(overview), metadata_url=metadata_url)
