"""A real OpenLDAP ``slapd`` for tests, with a configuration and a database of its own in a
temporary directory, listening on a free loopback port.

Debian's slapd package configures and (outside containers) starts a system service; the
tests neither need nor touch it. This server reads a ``slapd.conf`` written here (``-f``),
keeps its mdb database in the temporary directory, and runs in the foreground (``-d 0``)
as a child of the test process, so stopping it is a plain signal and no daemon is left
behind when a test fails.

With ``tls=True`` it also speaks TLS: a CA and a server certificate generated in the
temporary directory (for 127.0.0.1 and localhost, or the given names), StartTLS on the
``ldap://`` port and LDAPS on a second port.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path
from types import TracebackType

import ldap3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from ldap3.core.exceptions import LDAPException
from ldap3.utils.dn import escape_rdn

SLAPD = "/usr/sbin/slapd"
MODULE_PATH = "/usr/lib/ldap"
SCHEMA_DIR = Path("/etc/ldap/schema")
SCHEMAS = ("core", "cosine", "inetorgperson", "nis")
BASE_DN = "dc=example,dc=com"
ROOT_DN = f"cn=admin,{BASE_DN}"
ROOT_PASSWORD = "root-secret"  # The rootdn's password of a throwaway test server.
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
# The names a TLS server's certificate is issued for: how the tests reach it.
LOOPBACK_NAMES = ("127.0.0.1", "localhost")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def closed_port() -> int:
    """A loopback port nothing listens on (it was free a moment ago)."""
    return free_port()


class Slapd:
    """One slapd process over one database; ``stop()`` and ``start()`` keep the data.

    Use it as a context manager: on exit the process is killed and the directory removed,
    also when the body raised.
    """

    def __init__(
        self,
        *,
        size_limit: int | None = None,
        memberof: bool = True,
        tls: bool = False,
        certificate_names: tuple[str, ...] = LOOPBACK_NAMES,
    ) -> None:
        self.size_limit = size_limit
        self.memberof = memberof
        self.tls = tls
        self.certificate_names = certificate_names
        self.port = free_port()
        # ldap3 refuses a trailing slash after the port; slapd's -h wants one.
        self.url = f"ldap://127.0.0.1:{self.port}"
        # With TLS: LDAPS on a port of its own, and the PEM of the CA that issued the server's certificate.
        self.ldaps_port = free_port() if tls else None
        self.ldaps_url = f"ldaps://127.0.0.1:{self.ldaps_port}" if tls else None
        self.ca_cert_pem: str | None = None
        self.base_dn = BASE_DN
        self.root_dn = ROOT_DN
        self.root_password = ROOT_PASSWORD
        self._dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: Path | None = None

    # ------------------------------------------------------------ lifecycle

    def __enter__(self) -> Slapd:
        self._dir = Path(tempfile.mkdtemp(prefix="slapd-"))
        try:
            (self._dir / "data").mkdir()
            if self.tls:
                self._write_certificates()
            (self._dir / "slapd.conf").write_text(self._config(), encoding="utf-8")
            self.start()
            self._add_base()
        except BaseException:
            self._cleanup()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._cleanup()

    def _cleanup(self) -> None:
        try:
            self.stop()
        finally:
            if self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)
                self._dir = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the server (again) on the same port and data; return once it answers."""
        if self.running:
            return
        assert self._dir is not None, "use Slapd as a context manager"
        self._log = self._dir / "slapd.log"
        listeners = " ".join(url + "/" for url in (self.url, self.ldaps_url) if url)
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(
                [SLAPD, "-d", "0", "-f", str(self._dir / "slapd.conf"), "-h", listeners],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self._wait_until_answering()

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)

    def _wait_until_answering(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"slapd exited with {self._process.returncode}:\n{self._log_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    pass
                conn = self.connection()
                conn.unbind()
                return
            except (OSError, LDAPException) as exc:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"slapd did not answer within {START_TIMEOUT}s:\n{self._log_text()}"
                    ) from exc
                time.sleep(0.02)

    def _log_text(self) -> str:
        return self._log.read_text(errors="replace")[-4000:] if self._log and self._log.exists() else ""

    def _config(self) -> str:
        assert self._dir is not None
        lines = [f"include {SCHEMA_DIR / name}.schema" for name in SCHEMAS]
        lines += [
            f"pidfile {self._dir / 'slapd.pid'}",
            f"argsfile {self._dir / 'slapd.args'}",
            f"modulepath {MODULE_PATH}",
            "moduleload back_mdb",
        ]
        if self.tls:
            lines += [
                f"TLSCACertificateFile {self._dir / 'ca.pem'}",
                f"TLSCertificateFile {self._dir / 'server.pem'}",
                f"TLSCertificateKeyFile {self._dir / 'server.key'}",
            ]
        if self.memberof:
            lines.append("moduleload memberof")
        if self.size_limit is not None:
            # Like AD's MaxPageSize: a plain search stops at the limit, a paged search (RFC 2696)
            # gets every entry. slapd's default total for paged searches is the hard limit.
            lines.append(f"sizelimit size={self.size_limit} size.prtotal=unlimited")
        lines += [
            "database mdb",
            "maxsize 104857600",
            f'suffix "{BASE_DN}"',
            f'rootdn "{ROOT_DN}"',
            f"rootpw {ROOT_PASSWORD}",
            f"directory {self._dir / 'data'}",
            "index objectClass eq",
            "index uid,cn,mail eq",
            # Anyone may bind (that is how users are authenticated); only bound users read. A
            # service account named password-admin may reset passwords, as a helpdesk account
            # with that right in a company directory may (the password reset link's write-back).
            "access to attrs=userPassword by anonymous auth by self write"
            ' by dn.regex="^uid=password-admin,.*" write by * none',
            "access to * by users read by * none",
        ]
        if self.memberof:
            lines += ["overlay memberof", "memberof-refint TRUE"]
        return "\n".join(lines) + "\n"

    def _write_certificates(self) -> None:
        assert self._dir is not None
        authority = certificate_authority("Test LDAP CA")
        server = authority.issue(self.certificate_names)
        self.ca_cert_pem = authority.certificate_pem
        (self._dir / "ca.pem").write_text(authority.certificate_pem, encoding="utf-8")
        (self._dir / "server.pem").write_text(server.certificate_pem, encoding="utf-8")
        key_file = self._dir / "server.key"
        key_file.write_text(server.key_pem, encoding="utf-8")
        key_file.chmod(0o600)

    # ------------------------------------------------------------ data

    def connection(self) -> ldap3.Connection:
        """A connection bound as the rootdn (raises when the bind fails)."""
        server = ldap3.Server(self.url, connect_timeout=1)
        return ldap3.Connection(
            server,
            user=ROOT_DN,
            password=ROOT_PASSWORD,
            auto_bind=True,
            # Loading thousands of members into one group takes slapd seconds on a busy machine.
            receive_timeout=30,
            raise_exceptions=True,
        )

    def _add_base(self) -> None:
        conn = self.connection()
        try:
            conn.add(BASE_DN, ["top", "dcObject", "organization"], {"dc": "example", "o": "Example"})
        finally:
            conn.unbind()

    @contextmanager
    def subtree(self) -> Iterator[Subtree]:
        """A fresh ``ou=t<hex>`` under the base with ``ou=people`` and ``ou=groups``, removed
        after the test, so tests sharing the server never see each other's entries."""
        tree = Subtree(self, f"ou=t{uuid.uuid4().hex[:10]},{BASE_DN}")
        tree.create()
        try:
            yield tree
        finally:
            # A test that stopped the server leaves it running again for the next one.
            self.start()
            tree.delete()


@dataclass(frozen=True)
class IssuedCertificate:
    certificate_pem: str
    key_pem: str


@dataclass(frozen=True)
class CertificateAuthority:
    """A throwaway CA (EC P-256 keys: quick to generate, and GnuTLS in slapd takes them)."""

    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @property
    def certificate_pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")

    def issue(self, names: Iterable[str]) -> IssuedCertificate:
        """A server certificate for ``names`` (IP addresses become IP SANs, the rest DNS SANs)."""
        names = tuple(names)
        key = ec.generate_private_key(ec.SECP256R1())
        alternative_names: list[x509.GeneralName] = []
        for name in names:
            try:
                alternative_names.append(x509.IPAddress(ip_address(name)))
            except ValueError:
                alternative_names.append(x509.DNSName(name))
        now = datetime.now(UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(alternative_names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            # Python's strict X.509 checks (the default from 3.13) want the issuer's key id.
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )
        return IssuedCertificate(
            certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"),
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ).decode("ascii"),
        )


def certificate_authority(common_name: str) -> CertificateAuthority:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CertificateAuthority(key, certificate)


class Subtree:
    def __init__(self, server: Slapd, dn: str) -> None:
        self.server = server
        self.dn = dn
        self.people = f"ou=people,{dn}"
        self.groups = f"ou=groups,{dn}"

    def create(self) -> None:
        ou = self.dn.split(",", 1)[0].removeprefix("ou=")
        with _bound(self.server) as conn:
            conn.add(self.dn, ["organizationalUnit"], {"ou": ou})
            conn.add(self.people, ["organizationalUnit"], {"ou": "people"})
            conn.add(self.groups, ["organizationalUnit"], {"ou": "groups"})

    def delete(self) -> None:
        with _bound(self.server) as conn:
            conn.search(self.dn, "(objectClass=*)", attributes=[])
            # Deepest entries first: a DN with more RDNs sits lower in the tree.
            for dn in sorted((e.entry_dn for e in conn.entries), key=_depth, reverse=True):
                conn.delete(dn)

    def add_user(
        self,
        uid: str,
        password: str | None,
        *,
        cn: str | None = None,
        sn: str = "User",
        given_name: str | None = None,
        mail: str | None = None,
        phone: str | None = None,
        parent: str | None = None,
        extra: Mapping[str, str | list[str]] | None = None,
    ) -> str:
        """Add an inetOrgPerson named by its uid (or ``cn`` when given) and return its DN."""
        rdn = f"uid={escape_rdn(uid)}" if cn is None else f"cn={escape_rdn(cn)}"
        dn = f"{rdn},{parent or self.people}"
        attributes: dict[str, str | list[str]] = {"uid": uid, "cn": cn or uid, "sn": sn}
        for name, value in (
            ("givenName", given_name),
            ("mail", mail),
            ("telephoneNumber", phone),
            ("userPassword", password),
        ):
            if value is not None:
                attributes[name] = value
        attributes.update(extra or {})
        with _bound(self.server) as conn:
            conn.add(dn, ["inetOrgPerson"], attributes)
        return dn

    def exists(self, dn: str) -> bool:
        from ldap3.core.exceptions import LDAPNoSuchObjectResult

        with _bound(self.server) as conn:
            try:
                return bool(conn.search(dn, "(objectClass=*)", search_scope="BASE", attributes=[]))
            except LDAPNoSuchObjectResult:
                return False

    def delete_entry(self, dn: str) -> None:
        with _bound(self.server) as conn:
            assert conn.delete(dn), conn.result

    def add_group(self, cn: str, members: Iterable[str]) -> str:
        dn = f"cn={escape_rdn(cn)},{self.groups}"
        with _bound(self.server) as conn:
            conn.add(dn, ["groupOfNames"], {"cn": cn, "member": list(members)})
        return dn


def _depth(dn: str) -> int:
    from ldap3.utils.dn import parse_dn

    return len(parse_dn(dn))


@contextmanager
def _bound(server: Slapd) -> Iterator[ldap3.Connection]:
    conn = server.connection()
    try:
        yield conn
    finally:
        conn.unbind()
