"""The product guide's "Send configured attributes": a directory user's mapped attributes go
into the AWS assertion as session tags (``https://aws.amazon.com/SAML/Attributes/PrincipalTag:<key>``),
which IAM policies can use for attribute-based access control (``aws:PrincipalTag/email``).

Only the attributes the directory's mapping stored on the user are sent: the username, the
e-mail address and the display name. Groups are not: a session tag has one value of at most
256 characters, and the groups already choose the roles. A value that breaks IAM's tag rules
is left out rather than failing the launch. Local users, and users of a directory with the
switch off, get no tags, so their assertions stay as they were.

AWS accepts session tags only when the role's trust policy allows ``sts:TagSession`` besides
``sts:AssumeRoleWithSAML`` (``idp_core.apps.saml_trust_policy`` writes both); a role whose
trust policy lacks it refuses every sign-in that carries tags.
"""

from __future__ import annotations

from idp_core.directories.signin import directory_of
from idp_core.directories.store import cached_settings
from idp_core.models import User
from idp_core.saml.aws import MAX_TAG_KEY_CHARS, MAX_TAG_VALUE_CHARS, TAG_KEY, TAG_VALUE

# Session tag key -> the user field that holds the mapped attribute.
TAG_FIELDS = {
    "username": "display_username",
    "email": "email",
    "displayName": "display_name",
}


def principal_tags_for(user: User) -> dict[str, str]:
    """The session tags for ``user``'s AWS assertion: empty unless the user comes from a
    directory whose "Send configured attributes" is on (as this container read the
    directories' settings at most 30 s ago; a deleted directory sends nothing)."""
    name = directory_of(user)
    settings = cached_settings(name) if name is not None else None
    if settings is None or not settings.send_configured_attributes:
        return {}
    tags: dict[str, str] = {}
    for key, field_name in TAG_FIELDS.items():
        value = getattr(user, field_name, None)
        if isinstance(value, str) and is_valid_tag(key, value):
            tags[key] = value
    return tags


def is_valid_tag(key: str, value: str) -> bool:
    """IAM's rules for a session tag (the ones ``saml.aws.check_aws_rules`` enforces); an empty
    value says nothing, so it is not sent either."""
    return (
        1 <= len(key) <= MAX_TAG_KEY_CHARS
        and TAG_KEY.fullmatch(key) is not None
        and 1 <= len(value) <= MAX_TAG_VALUE_CHARS
        and TAG_VALUE.fullmatch(value) is not None
    )
