"""Which function serves which paths: the API (infra), the local gateway and the tests all
route by this table. The longest matching prefix wins, as the most specific API Gateway
resource does; every other path goes to ``DEFAULT_FUNCTION``.

``/mfa/verify`` belongs to the sso function: the answer to a sign-in's challenge for an
app is the signed SAMLResponse itself, without one more round trip to the launch.
"""

from __future__ import annotations

DEFAULT_FUNCTION = "sso"
PATH_FUNCTIONS = {
    "/mfa": "otp",
    "/mfa/verify": "sso",
    "/me/mfa": "otp",
    "/admin/mfa": "otp",
    "/me/devices": "adaptive",
    "/admin/devices": "adaptive",
    "/admin/adaptive": "adaptive",
    "/admin/directories": "provisioning",
}
