"""The settings of one LDAP or Active Directory user store.

A ``DirectorySettings`` validates itself when it is built, so an invalid one can never be
stored or used: the caller gets ``BadRequest`` with a sentence and nothing is written
(S26). The bind password is not part of it: it is a secret, sealed with the KMS data key
and handed to the client separately.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, cast

from idp_core.directories.errors import CleartextRefused
from idp_core.directories.schedule import parse as parse_schedule
from idp_core.errors import BadRequest

AD, OPENLDAP, LDAP = "ad", "openldap", "ldap"
KINDS = (AD, OPENLDAP, LDAP)
MEMBER_OF, GROUP_SEARCH = "memberOf", "search"
GROUP_LOOKUPS = (MEMBER_OF, GROUP_SEARCH)
SLOT = "{username}"
# The named user filters of the console and the CLI; anything else is a custom filter.
USER_FILTERS = {
    "uid": "(uid={username})",
    "sAMAccountName": "(sAMAccountName={username})",
    "userPrincipalName": "(userPrincipalName={username})",
    "mail": "(mail={username})",
}
MAX_URLS = 5
MAX_BASES = 10
MAX_FILTER = 1000
MAX_DISPLAY_NAME = 100
MAX_PORT = 65535
# "new" is the console's form for a new directory; "local" is the sign-in form's choice of
# this IdP's own accounts (``signin.LOCAL_CHOICE``).
RESERVED_NAMES = ("new", "local")
SWITCHES = (
    "activate",
    "sync_users",
    "backup_auth",
    "allow_password_change",
    "admin_login",
    "show_to_users",
    "send_configured_attributes",
    "auto_register",
    "welcome_emails",
    "allow_cleartext",
)
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_ATTRIBUTE = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,127}")
_HOST = (
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*)"
)
_IPV6 = r"\[[0-9A-Fa-f:.]+\]"
_URL = re.compile(rf"(?P<scheme>ldaps?)://(?P<host>{_HOST}|{_IPV6})(?::(?P<port>[0-9]{{1,5}}))?/?", re.I)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def clean_name(raw: str) -> str:
    name = (raw or "").strip().lower()
    if name in RESERVED_NAMES:
        raise BadRequest(f"{name!r} is reserved; choose another name for the directory.")
    if not _NAME.fullmatch(name):
        raise BadRequest(
            "A directory name is 1-63 lower-case letters, digits and hyphens, "
            "starting with a letter or digit."
        )
    return name


@dataclass(frozen=True)
class AttributeMap:
    """Which LDAP attribute holds each user field (``groups``: the attribute with the DNs of
    the user's groups, used when groups are looked up by ``memberOf``)."""

    username: str
    email: str
    phone: str
    first_name: str
    last_name: str
    display_name: str
    groups: str

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if not isinstance(value, str) or not _ATTRIBUTE.fullmatch(value):
                raise BadRequest(
                    f"{value!r} for the {item.name.replace('_', ' ')} is not an LDAP attribute name "
                    "(a letter, then letters, digits and hyphens)."
                )

    @classmethod
    def for_kind(cls, kind: str, overrides: Mapping[str, str] | None = None) -> AttributeMap:
        """The defaults for ``kind`` with ``overrides`` (field -> attribute) applied."""
        defaults = dict(AD_ATTRIBUTES if kind == AD else OPENLDAP_ATTRIBUTES)
        for name, value in (overrides or {}).items():
            if name not in defaults:
                raise BadRequest(f"{name!r} is not a mapped field; the fields are: {', '.join(defaults)}.")
            defaults[name] = str(value).strip()
        return cls(**defaults)

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


AD_ATTRIBUTES = {
    "username": "sAMAccountName",
    "email": "mail",
    "phone": "telephoneNumber",
    "first_name": "givenName",
    "last_name": "sn",
    "display_name": "displayName",
    "groups": "memberOf",
}
OPENLDAP_ATTRIBUTES = {
    "username": "uid",
    "email": "mail",
    "phone": "telephoneNumber",
    "first_name": "givenName",
    "last_name": "sn",
    "display_name": "cn",
    "groups": "memberOf",
}


@dataclass(frozen=True)
class DirectorySettings:
    name: str
    display_name: str
    kind: str
    urls: tuple[str, ...]
    bind_dn: str
    bases: tuple[str, ...]
    # A named choice of ``USER_FILTERS`` or a custom filter with one ``{username}`` slot;
    # None: the kind's usual one (sAMAccountName for AD, uid otherwise).
    user_filter: str | None = None
    # None: the kind's defaults (``AttributeMap.for_kind``).
    attribute_map: AttributeMap | None = None
    start_tls: bool = False
    ca_cert_pem: str | None = None
    verify_certificates: bool = True
    group_lookup: str = MEMBER_OF
    # For ``group_lookup == "search"``: where groups live and which of their attributes
    # lists the members' DNs.
    group_base: str | None = None
    group_member_attribute: str = "member"
    activate: bool = False
    sync_users: bool = False
    backup_auth: bool = False
    allow_password_change: bool = False
    admin_login: bool = False
    show_to_users: bool = False
    send_configured_attributes: bool = False
    auto_register: bool = False
    welcome_emails: bool = False
    # S30: ldap:// without StartTLS sends every password in plain text; only an admin's explicit
    # choice for this directory allows it (a directory stored before the switch existed has it off).
    allow_cleartext: bool = False
    # When imports run by themselves: an EventBridge ``rate(...)`` or ``cron(...)``; None: never.
    schedule: str | None = None
    # Filled in by __post_init__ from ``user_filter``: the filter with its ``{username}`` slot.
    search_filter: str = field(default="", init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", clean_name(self.name))
        object.__setattr__(self, "display_name", _display_name(self.display_name))
        if self.kind not in KINDS:
            raise BadRequest(f"The directory type must be one of: {', '.join(KINDS)}.")
        object.__setattr__(self, "urls", _urls(self.urls))
        for flag in ("start_tls", "verify_certificates", *SWITCHES):
            if not isinstance(getattr(self, flag), bool):
                raise BadRequest(f"The setting {flag.replace('_', ' ')} is either on or off.")
        if self.start_tls and any(url.lower().startswith("ldaps://") for url in self.urls):
            raise BadRequest(
                "StartTLS secures an ldap:// connection; an ldaps:// URL is already encrypted. "
                "Use ldap:// URLs with StartTLS, or ldaps:// URLs without it."
            )
        object.__setattr__(self, "ca_cert_pem", _ca_cert(self.ca_cert_pem))
        object.__setattr__(self, "bind_dn", _dn(self.bind_dn, "bind DN"))
        object.__setattr__(self, "bases", _bases(self.bases))
        user_filter = self.user_filter
        if user_filter is None or not str(user_filter).strip():
            user_filter = "sAMAccountName" if self.kind == AD else "uid"
        object.__setattr__(self, "user_filter", str(user_filter).strip())
        object.__setattr__(self, "search_filter", _search_filter(str(user_filter).strip()))
        mapping = self.attribute_map
        if mapping is None:
            mapping = AttributeMap.for_kind(self.kind)
        elif not isinstance(mapping, AttributeMap):
            raise BadRequest("The attribute mapping must name an attribute for each field.")
        object.__setattr__(self, "attribute_map", mapping)
        self._check_groups()
        if self.allow_password_change and self.kind == AD and not self.encrypted:
            raise BadRequest(
                "Active Directory changes a password only over an encrypted connection: "
                "use ldaps:// URLs or StartTLS to allow users to change their password."
            )
        if self.welcome_emails and not (self.auto_register or self.sync_users):
            raise BadRequest(
                "Welcome e-mails go to users created from the directory: "
                "turn on user auto registration or sync users too."
            )
        object.__setattr__(self, "schedule", _schedule(self.schedule))

    def _check_groups(self) -> None:
        if self.group_lookup not in GROUP_LOOKUPS:
            raise BadRequest(f"Groups are looked up by one of: {', '.join(GROUP_LOOKUPS)}.")
        if self.group_lookup == GROUP_SEARCH:
            if not self.group_base:
                raise BadRequest("A group search needs the DN under which the groups are.")
            object.__setattr__(self, "group_base", _dn(self.group_base, "group base"))
            if not _ATTRIBUTE.fullmatch(str(self.group_member_attribute)):
                raise BadRequest(
                    f"{self.group_member_attribute!r} for the group member attribute is not an "
                    "LDAP attribute name (a letter, then letters, digits and hyphens)."
                )
        elif self.group_base:
            object.__setattr__(self, "group_base", _dn(self.group_base, "group base"))

    @property
    def mapping(self) -> AttributeMap:
        # __post_init__ always sets it; the field is optional only as a constructor argument.
        return cast(AttributeMap, self.attribute_map)

    @property
    def encrypted(self) -> bool:
        return not self.cleartext_urls

    @property
    def cleartext_urls(self) -> tuple[str, ...]:
        """The URLs a connection to would not be encrypted: ldap:// without StartTLS."""
        if self.start_tls:
            return ()
        return tuple(url for url in self.urls if not url.lower().startswith("ldaps://"))

    @property
    def connection_security(self) -> str:
        """How connections are secured, as the console and ``idp directory show`` say it."""
        if self.encrypted:
            return "Encrypted (StartTLS)" if self.start_tls else "Encrypted (LDAPS)"
        return "Unencrypted, allowed by an administrator" if self.allow_cleartext else "Unencrypted, refused"

    def ensure_encrypted_or_allowed(self) -> None:
        """Raise ``CleartextRefused`` unless every connection is encrypted or an admin allowed
        unencrypted ones for this directory (S30); checked before saving and before connecting."""
        if self.encrypted or self.allow_cleartext:
            return
        raise CleartextRefused(
            f"Connections to {', '.join(self.cleartext_urls)} would not be encrypted, and this "
            "directory does not allow unencrypted connections: use ldaps:// URLs or StartTLS, or turn on "
            '"Allow unencrypted connection" (idp directory update '
            f"{self.name} --allow-cleartext) if the network between this service and the directory is "
            "trusted."
        )

    def user_search_filter(self, username: str) -> str:
        """The user filter for ``username``, escaped (RFC 4515) so it matches that one value (S23)."""
        # ldap3 and cryptography are imported where settings are checked or used, not with
        # this module, which every function that lists directories imports.
        from ldap3.utils.conv import escape_filter_chars

        return self.search_filter.replace(SLOT, escape_filter_chars(username))

    def to_json(self) -> str:
        data = asdict(self)
        data.pop("search_filter")
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> DirectorySettings:
        known = {item.name: data[item.name] for item in fields(cls) if item.init and item.name in data}
        for name in ("urls", "bases"):
            if name in known and isinstance(known[name], list):
                known[name] = tuple(known[name])
        mapping = known.get("attribute_map")
        if isinstance(mapping, Mapping):
            known["attribute_map"] = AttributeMap.for_kind(str(known.get("kind")), mapping)
        return cls(**known)


def _display_name(raw: object) -> str:
    text = str(raw or "").strip()
    if not text or len(text) > MAX_DISPLAY_NAME or _CONTROL.search(text):
        raise BadRequest(f"The display name is 1-{MAX_DISPLAY_NAME} characters on one line.")
    return text


def _as_tuple(values: Iterable[str] | str, what: str) -> tuple[str, ...]:
    if isinstance(values, str):
        raise BadRequest(f"The {what} must be a list.")
    return tuple(str(value).strip() for value in values if str(value).strip())


def _urls(values: Iterable[str]) -> tuple[str, ...]:
    urls = _as_tuple(values, "server URLs")
    if not 1 <= len(urls) <= MAX_URLS:
        raise BadRequest(f"A directory has 1 to {MAX_URLS} server URLs, tried in order.")
    cleaned: list[str] = []
    for url in urls:
        match = _URL.fullmatch(url)
        port = match and match["port"]
        if not match or (port is not None and not 1 <= int(port) <= MAX_PORT):
            raise BadRequest(
                f"{url!r} is not a directory server URL: use ldap://host[:port] or ldaps://host[:port], "
                "without a path or query."
            )
        # ldap3 refuses a trailing slash after the host, so the stored form has none.
        text = f"{match['scheme'].lower()}://{match['host']}" + (f":{port}" if port else "")
        if text not in cleaned:
            cleaned.append(text)
    return tuple(cleaned)


def _ca_cert(raw: str | None) -> str | None:
    if raw is None or not str(raw).strip():
        return None
    text = str(raw).strip()
    from cryptography import x509

    try:
        x509.load_pem_x509_certificates(text.encode("utf-8"))
    except ValueError:
        raise BadRequest(
            "The CA certificate is not a PEM X.509 certificate "
            "(text from -----BEGIN CERTIFICATE----- to -----END CERTIFICATE-----)."
        ) from None
    return text + "\n"


def _dn(raw: object, what: str) -> str:
    from ldap3.core.exceptions import LDAPException
    from ldap3.utils.dn import parse_dn

    text = str(raw or "").strip()
    try:
        if not text or not parse_dn(text):
            raise BadRequest(f"The {what} is required.")
    except LDAPException:
        raise BadRequest(
            f"{text!r} for the {what} is not a distinguished name such as dc=example,dc=com."
        ) from None
    return text


def _bases(values: Iterable[str]) -> tuple[str, ...]:
    bases = _as_tuple(values, "search bases")
    if not 1 <= len(bases) <= MAX_BASES:
        raise BadRequest(f"A directory has 1 to {MAX_BASES} search bases.")
    cleaned: list[str] = []
    for base in bases:
        dn = _dn(base, "search base")
        if dn not in cleaned:
            cleaned.append(dn)
    return tuple(cleaned)


def _search_filter(user_filter: str) -> str:
    named = USER_FILTERS.get(user_filter)
    if named is not None:
        return named
    if len(user_filter) > MAX_FILTER:
        raise BadRequest(f"The user filter may have at most {MAX_FILTER} characters.")
    if user_filter.count(SLOT) != 1:
        raise BadRequest(
            f"A custom user filter has exactly one {SLOT} slot for the name typed at sign-in, "
            f"e.g. (&(objectClass=person)(uid={SLOT})); or choose one of: {', '.join(USER_FILTERS)}."
        )
    from ldap3.core.exceptions import LDAPException
    from ldap3.operation.search import parse_filter

    try:
        parse_filter(
            user_filter.replace(SLOT, "x"),
            None,
            auto_escape=False,
            auto_encode=False,
            validator=None,
            check_names=False,
        )
    except LDAPException:
        raise BadRequest(
            f"{user_filter!r} is not a valid LDAP filter (RFC 4515), "
            f"e.g. (&(objectClass=person)(uid={SLOT}))."
        ) from None
    return user_filter


def _schedule(raw: str | None) -> str | None:
    if raw is None or not str(raw).strip():
        return None
    text = str(raw).strip()
    # The parser refuses what EventBridge would refuse, and rates shorter than the tick.
    parse_schedule(text)
    return text
