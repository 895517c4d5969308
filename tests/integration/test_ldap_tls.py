"""TLS to the directory against a real slapd with a real certificate: LDAPS and StartTLS with
the right CA authenticate; a CA that did not issue the certificate, a certificate for another
host name, or LDAPS to a plain port each fail with a sentence that names the problem; turning
the certificate checks off (they are on by default) connects anyway."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from idp_core.directories import client
from idp_core.directories.errors import TlsFailure, WrongPassword
from idp_core.directories.settings import DirectorySettings
from tests.helpers.cli import idp, ok
from tests.support.slapd import Slapd, Subtree, certificate_authority

SERVICE_PASSWORD = "service-secret"
ALICE_PASSWORD = "alice-Secret-1"


@pytest.fixture(scope="module")
def tls_slapd() -> Iterator[Slapd]:
    """A slapd whose certificate is issued for 127.0.0.1 and localhost by its own CA."""
    with Slapd(tls=True) as server:
        yield server


@pytest.fixture
def tls_tree(tls_slapd: Slapd) -> Iterator[Subtree]:
    with tls_slapd.subtree() as tree:
        tree.add_user("svc", SERVICE_PASSWORD, parent=tree.dn)
        tree.add_user("alice", ALICE_PASSWORD, cn="Alice Example", mail="alice@example.com")
        yield tree


@pytest.fixture
def other_host_slapd() -> Iterator[Slapd]:
    """A slapd whose (validly issued) certificate names another host than the one we reach."""
    with Slapd(tls=True, certificate_names=("ldap.other.example",)) as server:
        yield server


@pytest.fixture
def wrong_ca() -> str:
    """A CA certificate that did not issue the server's certificate."""
    return certificate_authority("Some Other CA").certificate_pem


def settings_for(tree: Subtree, *urls: str, **changes: Any) -> DirectorySettings:
    values: dict[str, Any] = {
        "name": "corp",
        "display_name": "Corp LDAP",
        "kind": "openldap",
        "urls": urls,
        "bind_dn": f"uid=svc,{tree.dn}",
        "bases": (tree.people,),
    }
    values.update(changes)
    return DirectorySettings(**values)


def _ldaps(server: Slapd, host: str = "127.0.0.1") -> str:
    return f"ldaps://{host}:{server.ldaps_port}"


def test_ldaps_with_the_right_ca_authenticates_a_user(tls_slapd: Slapd, tls_tree: Subtree) -> None:
    settings = settings_for(tls_tree, _ldaps(tls_slapd), ca_cert_pem=tls_slapd.ca_cert_pem)

    user = client.authenticate(settings, SERVICE_PASSWORD, "alice", ALICE_PASSWORD)

    assert (user.username, user.email) == ("alice", "alice@example.com")
    assert client.test_connection(settings).message == f"Connected to {_ldaps(tls_slapd)} over TLS."
    with pytest.raises(WrongPassword):  # the bind as the user really happens over this connection
        client.authenticate(settings, SERVICE_PASSWORD, "alice", "not-her-password")


def test_start_tls_with_the_right_ca_authenticates_a_user(tls_slapd: Slapd, tls_tree: Subtree) -> None:
    settings = settings_for(tls_tree, tls_slapd.url, start_tls=True, ca_cert_pem=tls_slapd.ca_cert_pem)

    user = client.authenticate(settings, SERVICE_PASSWORD, "alice", ALICE_PASSWORD)

    assert user.username == "alice"
    assert client.test_connection(settings).message == f"Connected to {tls_slapd.url} over TLS."
    with client.service_connection(settings, SERVICE_PASSWORD) as conn:
        assert conn.tls_started  # the bind went over the secured connection, never in clear


def test_the_dns_name_in_the_certificate_is_accepted(tls_slapd: Slapd, tls_tree: Subtree) -> None:
    settings = settings_for(tls_tree, _ldaps(tls_slapd, "localhost"), ca_cert_pem=tls_slapd.ca_cert_pem)
    assert client.authenticate(settings, SERVICE_PASSWORD, "alice", ALICE_PASSWORD).username == "alice"


def test_the_host_check_does_not_rest_on_ssl_match_hostname_which_python_3_12_removed(
    tls_slapd: Slapd, tls_tree: Subtree, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the Lambda runtime (3.13) ldap3 matches names with its own copy of match_hostname,
    which never matches an IP address: with that copy in place, an IP URL still connects
    (the handshake checks the name) and another host's certificate still fails."""
    import ldap3.core.tls
    from ldap3.utils.tls_backport import match_hostname as match_hostname_without_ip_addresses

    monkeypatch.setattr(ldap3.core.tls, "match_hostname", match_hostname_without_ip_addresses)
    settings = settings_for(tls_tree, _ldaps(tls_slapd), ca_cert_pem=tls_slapd.ca_cert_pem)

    assert client.authenticate(settings, SERVICE_PASSWORD, "alice", ALICE_PASSWORD).username == "alice"


@pytest.mark.parametrize("start_tls", [False, True], ids=["ldaps", "starttls"])
def test_a_ca_that_did_not_issue_the_certificate_is_a_tls_failure_naming_it(
    tls_slapd: Slapd, tls_tree: Subtree, wrong_ca: str, start_tls: bool
) -> None:
    url = tls_slapd.url if start_tls else _ldaps(tls_slapd)
    settings = settings_for(tls_tree, url, start_tls=start_tls, ca_cert_pem=wrong_ca)

    with pytest.raises(TlsFailure) as failure:
        client.authenticate(settings, SERVICE_PASSWORD, "alice", ALICE_PASSWORD)

    message = failure.value.message
    assert message.startswith(f"No directory server could be reached securely ({url}: ")
    assert "the server's certificate was not accepted (" in message
    assert "check that the CA certificate is the one that issued it" in message
    assert "(('" not in message  # no nested reprs of ldap3's exceptions


def test_certificate_checks_are_on_by_default(tls_slapd: Slapd, tls_tree: Subtree) -> None:
    # No CA certificate configured: the system's CAs do not know the test CA.
    settings = settings_for(tls_tree, _ldaps(tls_slapd))
    assert settings.verify_certificates is True
    with pytest.raises(TlsFailure, match="certificate was not accepted"):
        client.test_connection(settings)


@pytest.mark.parametrize("start_tls", [False, True], ids=["ldaps", "starttls"])
def test_a_certificate_for_another_host_name_is_a_tls_failure(
    other_host_slapd: Slapd, start_tls: bool
) -> None:
    with other_host_slapd.subtree() as tree:
        tree.add_user("svc", SERVICE_PASSWORD, parent=tree.dn)
        url = other_host_slapd.url if start_tls else _ldaps(other_host_slapd)
        settings = settings_for(tree, url, start_tls=start_tls, ca_cert_pem=other_host_slapd.ca_cert_pem)

        with pytest.raises(TlsFailure) as failure:
            client.test_service_bind(settings, SERVICE_PASSWORD)

    assert (
        "the server's certificate is not issued for 127.0.0.1; use a URL with a name the certificate holds"
        in failure.value.message
    )


def test_without_certificate_checks_a_wrong_ca_and_host_still_connect(other_host_slapd: Slapd) -> None:
    with other_host_slapd.subtree() as tree:
        tree.add_user("svc", SERVICE_PASSWORD, parent=tree.dn)
        settings = settings_for(tree, _ldaps(other_host_slapd), verify_certificates=False)

        assert client.test_connection(settings).message.endswith("over TLS.")
        assert client.test_service_bind(settings, SERVICE_PASSWORD).message.startswith(
            f"Bound to {_ldaps(other_host_slapd)} as uid=svc,"
        )


def test_ldaps_to_the_plain_ldap_port_says_the_handshake_failed(tls_slapd: Slapd, tls_tree: Subtree) -> None:
    url = tls_slapd.url.replace("ldap://", "ldaps://")
    settings = settings_for(tls_tree, url, ca_cert_pem=tls_slapd.ca_cert_pem)

    with pytest.raises(TlsFailure) as failure:
        client.test_connection(settings)

    assert f"{url}: the TLS handshake failed (" in failure.value.message
    assert "check that the port speaks LDAPS (ldaps://) or StartTLS" in failure.value.message


def test_a_failing_url_falls_through_to_the_next_one_that_verifies(
    tls_slapd: Slapd, tls_tree: Subtree
) -> None:
    plain_port = tls_slapd.url.replace("ldap://", "ldaps://")
    settings = settings_for(tls_tree, plain_port, _ldaps(tls_slapd), ca_cert_pem=tls_slapd.ca_cert_pem)
    assert client.test_connection(settings).message == f"Connected to {_ldaps(tls_slapd)} over TLS."


@pytest.mark.usefixtures("with_data_key")
def test_the_cli_reports_the_tls_failure_with_a_sentence_and_exits_1(
    capsys: pytest.CaptureFixture[str], tls_slapd: Slapd, tls_tree: Subtree, wrong_ca: str, tmp_path: Path
) -> None:
    ca_file = tmp_path / "wrong-ca.pem"
    ca_file.write_text(wrong_ca, encoding="utf-8")
    ok(
        capsys,
        "directory", "add-ldap", "corp", "--type", "openldap", "--url", _ldaps(tls_slapd),
        "--ca-cert", str(ca_file), "--bind-dn", f"uid=svc,{tls_tree.dn}", "--bind-password-stdin",
        "--base", tls_tree.people,
        stdin=SERVICE_PASSWORD + "\n",
    )  # fmt: skip

    code, out, _ = idp(capsys, "directory", "test", "corp")

    assert code == 1
    rows = out.splitlines()
    assert rows[0].startswith("connection  FAILED: No directory server could be reached securely")
    assert "the server's certificate was not accepted" in rows[0] and rows[0].endswith(").")
    assert rows[1].startswith("bind") and "not run" in rows[1]

    # With the right CA the same directory passes its tests.
    ca_file.write_text(str(tls_slapd.ca_cert_pem), encoding="utf-8")
    ok(capsys, "directory", "update", "corp", "--ca-cert", str(ca_file))
    out = ok(capsys, "directory", "test", "corp")
    assert out.splitlines()[0] == f"connection  ok: Connected to {_ldaps(tls_slapd)} over TLS."
