"""Which AWS region the ``idp`` CLI acts in, and what chose it.

The order is the AWS CLI v2's: ``--region``, then ``AWS_REGION``, then ``AWS_DEFAULT_REGION``,
then the ``region`` of the profile (``AWS_PROFILE``, else ``default``) in the AWS config file.
boto3 alone reads only the last two, so a shell that sets ``AWS_REGION`` for the AWS CLI
would otherwise send ``idp`` elsewhere; ``apply`` makes boto3 and PynamoDB follow the choice.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from dataclasses import dataclass

OPTION = "--region"
ENV_REGION = "AWS_REGION"
ENV_DEFAULT_REGION = "AWS_DEFAULT_REGION"


@dataclass(frozen=True)
class RegionChoice:
    region: str | None
    # What chose it, in words: "--region", "AWS_REGION", "the profile 'prod' in ~/.aws/config".
    source: str

    def apply(self, env: MutableMapping[str, str]) -> None:
        """Make boto3 (which reads AWS_DEFAULT_REGION and the profile) use this region."""
        if self.region and self.source in (OPTION, ENV_REGION):
            env[ENV_DEFAULT_REGION] = self.region


def choose_region(option: str | None, env: MutableMapping[str, str] | None = None) -> RegionChoice:
    env = os.environ if env is None else env
    if option and option.strip():
        return RegionChoice(option.strip(), OPTION)
    for name in (ENV_REGION, ENV_DEFAULT_REGION):
        value = env.get(name, "").strip()
        if value:
            return RegionChoice(value, name)
    return _profile_region()


def _profile_region() -> RegionChoice:
    import botocore.session
    from botocore.exceptions import ProfileNotFound

    # botocore reads AWS_PROFILE and AWS_CONFIG_FILE from the process environment.
    session = botocore.session.Session()
    profile = session.profile or "default"
    config_file = session.get_config_variable("config_file")
    try:
        region = session.get_scoped_config().get("region")
    except ProfileNotFound:
        return RegionChoice(None, f"no region: the profile {profile!r} is not in {config_file}")
    if not region:
        return RegionChoice(
            None,
            f"no region: neither {OPTION}, {ENV_REGION}, {ENV_DEFAULT_REGION} nor the profile {profile!r}",
        )
    return RegionChoice(str(region), f"the profile {profile!r} in {config_file}")
