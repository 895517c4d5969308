"""The adaptive function: devices and adaptive policies (``/me/devices``, ``/admin/devices``,
``/admin/adaptive``)."""

from __future__ import annotations

from constructs import Construct

from infra.constructs.function import ADMIN_GUARD_TABLES, Access, FunctionSpec, IdpFunction, SharedInputs
from infra.layer_build import REPO_ROOT

FUNCTION_DIR = REPO_ROOT / "functions" / "adaptive"

# Users: an admin unlocks an account and removing a device lowers the user's device count.
# Sessions: looking up the caller's session refreshes its last use. Settings: the policies
# themselves. Apps are only read (which apps use a policy); the function never changes an
# app, so it cannot weaken an app's second-factor policy either. Factors and directories
# are only read, by the admin pages' guard (ADMIN_GUARD_TABLES). It issues no assertion,
# checks no second factor and sends no message: groups, tokens, transactions and rate
# limits stay out of its reach.
ADAPTIVE_TABLES = {
    **ADMIN_GUARD_TABLES,
    "users": Access.READ_WRITE,
    "devices": Access.READ_WRITE,
    "sessions": Access.READ_WRITE,
    "settings": Access.READ_WRITE,
    "apps": Access.READ,
    "audit": Access.READ_WRITE,
}


class AdaptiveFunction(IdpFunction):
    """The shared function shape and nothing more: no KMS, SNS or SES permission."""

    def __init__(self, scope: Construct, construct_id: str, *, shared: SharedInputs) -> None:
        super().__init__(
            scope,
            construct_id,
            spec=FunctionSpec(
                service_name="adaptive",
                code_dir=FUNCTION_DIR,
                description="serverless IdP: devices and adaptive authentication policies",
                table_access=ADAPTIVE_TABLES,
            ),
            shared=shared,
        )
