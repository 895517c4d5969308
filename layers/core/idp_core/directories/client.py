"""Talking to an LDAP or Active Directory server: bind authentication (S22, S23) and the
admin's four tests of a directory's settings.

The service account searches for the user with an escaped filter, exactly one entry must
match, and the password is checked by a bind as that entry's DN on a fresh connection.
Server URLs are tried in order; a URL that cannot be reached (or secured) moves on to the
next one. Every failure is a typed error from ``idp_core.directories.errors``.
"""

from __future__ import annotations

import math
import re
import ssl
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from idp_core.directories.errors import (
    AttributeMissing,
    BadServiceBind,
    DirectoryError,
    EmptyPassword,
    NoSuchUser,
    SeveralUsers,
    TlsFailure,
    Unreachable,
    WrongPassword,
)
from idp_core.directories.settings import AD, GROUP_SEARCH, SLOT, DirectorySettings

# ldap3 (with pyasn1) is imported where a directory is talked to, not with this module: most
# requests and every cold start of the functions that import it never reach a directory.
if TYPE_CHECKING:
    import ldap3
    from ldap3.core.exceptions import LDAPException

DEFAULT_TIMEOUT = 5.0
# Enough to tell "one" from "several" without reading a whole directory.
USER_SEARCH_LIMIT = 2
GROUP_SEARCH_LIMIT = 1000


# The attribute that names an entry for good, whatever its DN or username become (RFC 4530's
# entryUUID; AD's objectGUID, binary).
ENTRY_UUID, OBJECT_GUID = "entryUUID", "objectGUID"
OBJECT_GUID_BYTES = 16


@dataclass(frozen=True)
class DirectoryUser:
    """A directory entry with the mapped fields; ``groups`` are group names (their ``cn``).
    ``entry_id`` is its stable id (``stable_id``)."""

    dn: str
    username: str
    entry_id: str = ""
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    display_name: str | None = None
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class TestResult:
    """The answer of one of the admin's tests: a sentence, and for the mapping test the
    mapped attributes. A failed test raises instead."""

    ok: bool
    message: str
    attributes: dict[str, str | list[str] | None] = field(default_factory=dict)


# ---------------------------------------------------------------- authentication


def authenticate(
    settings: DirectorySettings,
    bind_password: str,
    username: str,
    password: str | None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> DirectoryUser:
    """The directory user ``username`` if ``password`` is theirs; raises otherwise."""
    # S22: checked before anything touches the network. An empty simple bind is an
    # anonymous bind, which many servers answer with success.
    if not password:
        raise EmptyPassword("An empty password is never sent to the directory.")
    user = find_user(settings, bind_password, username, timeout=timeout)
    check_password(settings, user.dn, password, timeout=timeout)
    return user


def find_user(
    settings: DirectorySettings,
    bind_password: str,
    username: str,
    *,
    by_mapped_username: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
) -> DirectoryUser:
    """The one entry the user filter matches for ``username`` (what people type: a uid, an
    e-mail address, a UPN), searched with the service account; with ``by_mapped_username``,
    the one user entry whose mapped username attribute is ``username`` instead."""
    from ldap3.utils.conv import escape_filter_chars

    name = (username or "").strip()
    if not name:
        raise NoSuchUser("A username is required.")
    if by_mapped_username:
        # The entries the user filter selects, narrowed to this value of the username attribute.
        objects = settings.search_filter.replace(SLOT, "*")
        search_filter = f"(&{objects}({settings.mapping.username}={escape_filter_chars(name)}))"
    else:
        search_filter = settings.user_search_filter(name)
    with _service_connection(settings, bind_password, timeout) as conn:
        entry = _one_entry(conn, settings, search_filter)
        return _user(conn, settings, entry)


def check_password(
    settings: DirectorySettings, dn: str, password: str | None, *, timeout: float = DEFAULT_TIMEOUT
) -> None:
    """Raise ``WrongPassword`` unless a bind as ``dn`` with ``password`` succeeds (S22: an empty
    password is refused before any connection)."""
    if not password:
        raise EmptyPassword("An empty password is never sent to the directory.")
    with _connection(settings, timeout) as conn:
        if not _bind(conn, dn, password):
            raise WrongPassword(f"The directory refused the password of {dn}.")


def stable_id_attribute(settings: DirectorySettings) -> str:
    return OBJECT_GUID if settings.kind == AD else ENTRY_UUID


def stable_id(entry: dict[str, Any], settings: DirectorySettings) -> str:
    """The entry's id that never changes (its objectGUID in AD, its entryUUID elsewhere); the DN
    in lower case for a server that has neither."""
    name = stable_id_attribute(settings)
    raw = (entry.get("raw_attributes") or {}).get(name) or []
    if raw and settings.kind == AD and len(raw[0]) == OBJECT_GUID_BYTES:
        return str(uuid.UUID(bytes_le=bytes(raw[0])))
    value = first_value(entry.get("attributes") or {}, name)
    return value.lower() if value else "dn:" + str(entry.get("dn")).lower()


def _one_entry(conn: ldap3.Connection, settings: DirectorySettings, search_filter: str) -> dict[str, Any]:
    from ldap3.core.results import RESULT_NO_SUCH_OBJECT, RESULT_SIZE_LIMIT_EXCEEDED

    mapping = settings.mapping.as_dict()
    wanted = sorted(
        {value for key, value in mapping.items() if key != "groups" or _by_member_of(settings)}
        | {stable_id_attribute(settings)}
    )
    found: dict[str, dict[str, Any]] = {}
    for base in settings.bases:
        _search(
            conn,
            base,
            search_filter,
            attributes=wanted,
            size_limit=USER_SEARCH_LIMIT,
            time_limit=int(max(1, conn.receive_timeout or DEFAULT_TIMEOUT)),
        )
        code = conn.result.get("result")
        if code == RESULT_SIZE_LIMIT_EXCEEDED:
            raise SeveralUsers(f"Several entries under {base} match {search_filter}; exactly one must.")
        if code == RESULT_NO_SUCH_OBJECT:
            continue  # This base does not exist (yet): it holds no one.
        if code != 0:
            raise DirectoryError(
                f"The search under {base} failed: {conn.result.get('description')} "
                f"{conn.result.get('message') or ''}".strip()
            )
        for item in conn.response or []:
            if item.get("type") == "searchResEntry":
                found[str(item["dn"]).lower()] = item
    if not found:
        raise NoSuchUser(f"No entry under {', '.join(settings.bases)} matches {search_filter}.")
    if len(found) > 1:
        names = ", ".join(sorted(str(item["dn"]) for item in found.values()))
        raise SeveralUsers(f"{len(found)} entries match {search_filter} ({names}); exactly one must.")
    return next(iter(found.values()))


def _by_member_of(settings: DirectorySettings) -> bool:
    return settings.group_lookup != GROUP_SEARCH


def _user(conn: ldap3.Connection, settings: DirectorySettings, entry: dict[str, Any]) -> DirectoryUser:
    dn = str(entry["dn"])
    attributes = entry.get("attributes") or {}
    mapping = settings.mapping
    username = first_value(attributes, mapping.username)
    if username is None:
        raise AttributeMissing(
            f"The entry {dn} has no {mapping.username!r} attribute, which is mapped to the username."
        )
    if _by_member_of(settings):
        group_dns = attribute_values(attributes, mapping.groups)
    else:
        group_dns = _group_search(conn, settings, dn)
    return DirectoryUser(
        dn=dn,
        username=username,
        entry_id=stable_id(entry, settings),
        email=first_value(attributes, mapping.email),
        phone=first_value(attributes, mapping.phone),
        first_name=first_value(attributes, mapping.first_name),
        last_name=first_value(attributes, mapping.last_name),
        display_name=first_value(attributes, mapping.display_name),
        groups=tuple(sorted({name for name in map(group_name, group_dns) if name})),
    )


def _group_search(conn: ldap3.Connection, settings: DirectorySettings, user_dn: str) -> list[str]:
    from ldap3.utils.conv import escape_filter_chars

    base = settings.group_base or settings.bases[0]
    _search(
        conn,
        base,
        f"({settings.group_member_attribute}={escape_filter_chars(user_dn)})",
        attributes=[],
        size_limit=GROUP_SEARCH_LIMIT,
    )
    return [str(item["dn"]) for item in conn.response or [] if item.get("type") == "searchResEntry"]


def _search(conn: ldap3.Connection, base: str, search_filter: str, **options: Any) -> None:
    import ldap3
    from ldap3.core.exceptions import LDAPException

    try:
        conn.search(base, search_filter, search_scope=ldap3.SUBTREE, **options)
    except LDAPException as exc:
        # The server went away (or timed out) between the bind and the search.
        raise Unreachable(f"The directory did not answer the search under {base}: {exc}") from exc


def attribute_values(attributes: Any, name: str) -> list[str]:
    # ldap3 keys the attributes case-insensitively; values of unknown syntax may be bytes.
    raw = attributes.get(name)
    if raw is None:
        return []
    items = raw if isinstance(raw, list | tuple) else [raw]
    return [item.decode("utf-8", "replace") if isinstance(item, bytes) else str(item) for item in items]


def first_value(attributes: Any, name: str) -> str | None:
    values = attribute_values(attributes, name)
    return values[0] if values else None


def group_name(group_dn: str) -> str | None:
    """The name a group goes by here: the ``cn`` of its DN's first RDN (for
    ``cn=awsadmins,ou=groups,dc=example,dc=com`` the name ``awsadmins``), unescaped (RFC 4514)."""
    from ldap3.core.exceptions import LDAPInvalidDnError
    from ldap3.utils.dn import parse_dn

    try:
        parts = parse_dn(group_dn)
    except LDAPInvalidDnError:
        return None
    first_rdn: list[tuple[str, str]] = []
    for attribute, value, separator in parts:
        first_rdn.append((attribute, value))
        if separator != "+":
            break
    for attribute, value in first_rdn:
        if attribute.lower() in ("cn", "2.5.4.3"):
            return unescape_dn_value(value)
    return unescape_dn_value(first_rdn[0][1]) if first_rdn else None


_HEX_PAIR = re.compile(r"[0-9a-fA-F]{2}")


def unescape_dn_value(value: str) -> str:
    """An attribute value of a DN without its RFC 4514 escapes (``\\,`` and ``\\C3\\BC``)."""
    out = bytearray()
    i = 0
    while i < len(value):
        char = value[i]
        if char == "\\" and i + 1 < len(value):
            pair = value[i + 1 : i + 3]
            if _HEX_PAIR.fullmatch(pair):
                out.append(int(pair, 16))
                i += 3
                continue
            out.extend(value[i + 1].encode("utf-8"))
            i += 2
            continue
        out.extend(char.encode("utf-8"))
        i += 1
    return out.decode("utf-8", "replace")


# ---------------------------------------------------------------- connections


@contextmanager
def _connection(
    settings: DirectorySettings, timeout: float, *, writable: bool = False
) -> Iterator[ldap3.Connection]:
    """An open, unbound connection to the first URL that answers (secured as configured)."""
    import ldap3
    from ldap3.core.exceptions import LDAPException, LDAPStartTLSError

    # Before any socket opens: also a directory stored before the switch existed (S30).
    settings.ensure_encrypted_or_allowed()
    failures: list[tuple[str, str, bool]] = []
    for url in settings.urls:
        conn = ldap3.Connection(
            ldap3.Server(url, connect_timeout=timeout, tls=_tls(settings), get_info=ldap3.NONE),
            # ldap3 packs this into SO_RCVTIMEO as whole seconds; a float breaks it.
            receive_timeout=max(1, math.ceil(timeout)),
            read_only=not writable,
            raise_exceptions=False,
            auto_referrals=False,
        )
        try:
            conn.open()
            if settings.start_tls and not conn.start_tls():
                raise LDAPStartTLSError(str(conn.result.get("description") or "StartTLS was refused"))
        except LDAPException as exc:
            _close(conn)
            tls = _is_tls(exc, url, settings)
            failures.append((url, _tls_reason(exc, url) if tls else str(exc), tls))
            continue
        try:
            yield conn
        finally:
            _close(conn)
        return
    reasons = "; ".join(f"{url}: {reason}" for url, reason, _ in failures)
    if any(tls for _, _, tls in failures):
        raise TlsFailure(f"No directory server could be reached securely ({reasons}).")
    raise Unreachable(f"No directory server could be reached ({reasons}).")


@contextmanager
def _service_connection(
    settings: DirectorySettings, bind_password: str, timeout: float, writable: bool = False
) -> Iterator[ldap3.Connection]:
    if not bind_password:
        # S22 for the service account too: an empty password would bind anonymously.
        raise BadServiceBind("The bind password of the service account is empty.")
    with _connection(settings, timeout, writable=writable) as conn:
        if not _bind(conn, settings.bind_dn, bind_password):
            raise BadServiceBind(
                f"The directory refused the bind DN {settings.bind_dn} or its password "
                f"({conn.result.get('description')})."
            )
        yield conn


def service_connection(
    settings: DirectorySettings,
    bind_password: str | None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    writable: bool = False,
) -> AbstractContextManager[ldap3.Connection]:
    """A connection bound as the service account (for imports; ``writable`` for a password
    reset), closed when the block ends."""
    return _service_connection(settings, bind_password or "", timeout, writable)


@contextmanager
def _user_connection(
    settings: DirectorySettings, dn: str, password: str, timeout: float
) -> Iterator[ldap3.Connection]:
    with _connection(settings, timeout, writable=True) as conn:
        if not _bind(conn, dn, password):
            raise WrongPassword(f"The directory refused the password of {dn}.")
        yield conn


def user_connection(
    settings: DirectorySettings, dn: str, password: str, *, timeout: float = DEFAULT_TIMEOUT
) -> AbstractContextManager[ldap3.Connection]:
    """A writable connection bound as the entry ``dn`` with its ``password`` (for a user who
    changes their own password), closed when the block ends; ``WrongPassword`` when refused."""
    return _user_connection(settings, dn, password, timeout)


def _bind(conn: ldap3.Connection, dn: str, password: str) -> bool:
    """True when the simple bind succeeds; False when the server refuses the credentials."""
    import ldap3
    from ldap3.core.exceptions import LDAPException

    if not password:
        raise EmptyPassword("An empty password is never sent to the directory.")
    conn.user = dn
    conn.password = password
    conn.authentication = ldap3.SIMPLE
    try:
        # Disabled, locked or expired accounts answer with other codes than invalidCredentials;
        # each is a refusal all the same.
        return bool(conn.bind())
    except LDAPException as exc:
        raise Unreachable(f"The directory did not answer the bind: {exc}") from exc


@cache
def _handshake_checked_tls() -> type[ldap3.Tls]:
    import ldap3

    class HandshakeCheckedTls(ldap3.Tls):  # type: ignore[misc]
        """TLS whose certificate chain AND host name OpenSSL checks during the handshake.

        ldap3 turns the context's own host name check off and calls ``ssl.match_hostname``,
        which Python 3.12 removed; there (the Lambda runtime is 3.13) ldap3 falls back to a
        copy that never matches an IP address. The handshake's check is the same on every
        version.
        """

        def wrap_socket(self, connection: Any, do_handshake: bool = False) -> None:
            context = ssl.create_default_context(cadata=self.ca_certs_data)
            connection.socket = context.wrap_socket(
                connection.socket,
                server_hostname=connection.server.host,
                do_handshake_on_connect=do_handshake,
            )

    return HandshakeCheckedTls


def _tls(settings: DirectorySettings) -> ldap3.Tls:
    import ldap3

    if not settings.verify_certificates:
        return ldap3.Tls(validate=ssl.CERT_NONE)
    return _handshake_checked_tls()(validate=ssl.CERT_REQUIRED, ca_certs_data=settings.ca_cert_pem)


def _is_tls(exc: LDAPException, url: str, settings: DirectorySettings) -> bool:
    from ldap3.core.exceptions import LDAPStartTLSError

    # ldap3 reports a failed handshake as a socket error; its text names SSL or the certificate.
    if isinstance(exc, LDAPStartTLSError):
        return True
    text = str(exc).lower()
    return (url.startswith("ldaps://") or settings.start_tls) and ("ssl" in text or "certificate" in text)


# ldap3 nests the ssl module's text in reprs of tuples; these pick out the part an admin can act on.
_VERIFY_FAILED = re.compile(r"certificate verify failed: ([^(')\"]+)")
_NAME_MISMATCH = re.compile(r"(?:Hostname|IP address) mismatch")
_SSL_REASON = re.compile(r"\[SSL: [A-Z0-9_]+\] ([^(')\"]+)")


def _tls_reason(exc: LDAPException, url: str) -> str:
    """A sentence naming why the connection to ``url`` could not be secured."""
    from ldap3.core.exceptions import LDAPStartTLSError

    text = str(exc)
    if _NAME_MISMATCH.search(text):
        return (
            f"the server's certificate is not issued for {urlsplit(url).hostname}; "
            "use a URL with a name the certificate holds"
        )
    verify = _VERIFY_FAILED.search(text)
    if verify:
        return (
            f"the server's certificate was not accepted ({verify.group(1).strip()}); "
            "check that the CA certificate is the one that issued it"
        )
    if isinstance(exc, LDAPStartTLSError) and "wrap socket" not in text:
        return f"the server refused StartTLS ({text})"
    reason = _SSL_REASON.search(text)
    return (
        f"the TLS handshake failed ({reason.group(1).strip() if reason else text}); "
        "check that the port speaks LDAPS (ldaps://) or StartTLS (ldap:// with StartTLS)"
    )


def _close(conn: ldap3.Connection) -> None:
    from ldap3.core.exceptions import LDAPException

    with suppress(LDAPException):
        conn.unbind()


# ---------------------------------------------------------------- the admin's tests


def test_connection(settings: DirectorySettings, *, timeout: float = DEFAULT_TIMEOUT) -> TestResult:
    with _connection(settings, timeout) as conn:
        url = _url_of(conn)
    secured = " over TLS" if settings.encrypted else ""
    return TestResult(True, f"Connected to {url}{secured}.")


def test_service_bind(
    settings: DirectorySettings, bind_password: str, *, timeout: float = DEFAULT_TIMEOUT
) -> TestResult:
    with _service_connection(settings, bind_password, timeout) as conn:
        url = _url_of(conn)
    return TestResult(True, f"Bound to {url} as {settings.bind_dn}.")


def test_configuration(
    settings: DirectorySettings,
    bind_password: str,
    username: str,
    password: str | None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> TestResult:
    user = authenticate(settings, bind_password, username, password, timeout=timeout)
    return TestResult(True, f"{user.username} signed in as {user.dn}.")


def test_attribute_mapping(
    settings: DirectorySettings, bind_password: str, username: str, *, timeout: float = DEFAULT_TIMEOUT
) -> TestResult:
    """The mapped attributes of ``username``; every mapped attribute but the groups must be
    on the entry (a user in no group has no ``memberOf``, which is not an error)."""
    user = find_user(settings, bind_password, username, timeout=timeout)
    mapping = settings.mapping.as_dict()
    values: dict[str, str | list[str] | None] = {
        name: getattr(user, name) for name in mapping if name not in ("groups",)
    }
    missing = [
        f"{name.replace('_', ' ')} ({mapping[name]})" for name, value in values.items() if value is None
    ]
    if missing:
        raise AttributeMissing(f"The entry {user.dn} has no attribute for: {', '.join(missing)}.")
    values["groups"] = list(user.groups)
    groups = ", ".join(user.groups) if user.groups else "no groups"
    return TestResult(True, f"{user.username} ({user.dn}) maps to all fields; groups: {groups}.", values)


def _url_of(conn: ldap3.Connection) -> str:
    server = conn.server
    scheme = "ldaps" if server.ssl else "ldap"
    return f"{scheme}://{server.host}:{server.port}"
