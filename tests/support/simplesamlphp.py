"""SimpleSAMLphp from Debian as a SAML service provider, served by PHP's built-in server on a
free port of this machine, with a configuration of its own in a temporary folder (the
package's /etc/simplesamlphp is read, never changed)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.support.aws import free_port

WWW = Path("/usr/share/simplesamlphp/www")
PACKAGES = "simplesamlphp php-cli php-xml php-mbstring"
_CERTIFICATE = re.compile(r"<ds:X509Certificate>([^<]+)<")


def _php(value: str) -> str:
    """A PHP single-quoted string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _write_config(folder: Path, base_url: str, idp_metadata: str) -> None:
    entity = re.search(r'entityID="([^"]+)"', idp_metadata)
    certificate = _CERTIFICATE.search(idp_metadata)
    sso = re.search(r'SingleSignOnService Binding="[^"]+HTTP-Redirect" Location="([^"]+)"', idp_metadata)
    if not (entity and certificate and sso):
        raise RuntimeError("the IdP metadata lacks an entity id, a certificate or a Redirect SSO service")
    for name in ("config", "metadata", "tmp", "log"):
        (folder / name).mkdir(parents=True, exist_ok=True)
    (folder / "config" / "config.php").write_text(
        "<?php\nrequire '/etc/simplesamlphp/config.php';\n"
        f"$config['baseurlpath'] = {_php(base_url + '/')};\n"
        "$config['secretsalt'] = 'tests-only-salt-of-no-value';\n"
        f"$config['tempdir'] = {_php(str(folder / 'tmp'))};\n"
        f"$config['datadir'] = {_php(str(folder / 'tmp'))};\n"
        f"$config['loggingdir'] = {_php(str(folder / 'log'))};\n"
        "$config['logging.handler'] = 'file';\n"
        "$config['store.type'] = 'phpsession';\n"
        # Plain http on the loopback: the package's default of secure cookies would refuse it.
        "$config['session.cookie.secure'] = false;\n"
        # Chromium drops a SameSite=None cookie that is not Secure; the IdP is on this same site.
        "$config['session.cookie.samesite'] = 'Lax';\n"
        f"$config['session.phpsession.savepath'] = {_php(str(folder / 'tmp'))};\n"
        "$config['metadata.sources'] = "
        f"[['type' => 'flatfile', 'directory' => {_php(str(folder / 'metadata'))}]];\n"
    )
    (folder / "config" / "authsources.php").write_text(
        "<?php\n$config = ['default-sp' => ['saml:SP', "
        f"'entityID' => {_php(base_url + '/sp')}, 'idp' => {_php(entity.group(1))}]];\n"
    )
    (folder / "metadata" / "saml20-idp-remote.php").write_text(
        f"<?php\n$metadata[{_php(entity.group(1))}] = [\n"
        f"  'SingleSignOnService' => [['Binding' => 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect', "
        f"'Location' => {_php(sso.group(1))}]],\n"
        f"  'certData' => {_php(certificate.group(1))},\n];\n"
    )


@contextmanager
def simplesamlphp_sp(folder: Path, idp_metadata: str) -> Iterator[str]:
    """A running SimpleSAMLphp SP ("default-sp") that trusts the IdP of ``idp_metadata``; its base URL."""
    php = shutil.which("php")
    if not WWW.is_dir() or php is None:
        raise RuntimeError(f"SimpleSAMLphp is not installed: apt-get install {PACKAGES} (make setup does).")
    base_url = f"http://127.0.0.1:{free_port()}"
    _write_config(folder, base_url, idp_metadata)
    log = (folder / "server.log").open("wb")
    server = subprocess.Popen(
        [php, "-S", base_url.removeprefix("http://"), "-t", str(WWW)],
        # Several workers: one would be held by a browser's idle connection, and the next
        # request (the Response posted to the ACS) would wait for it.
        env={
            "SIMPLESAMLPHP_CONFIG_DIR": str(folder / "config"),
            "PATH": "/usr/bin:/bin",
            "PHP_CLI_SERVER_WORKERS": "4",
        },
        stdout=log,
        stderr=subprocess.STDOUT,
        # A group of its own: the workers are the server's children, and end with it.
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if requests.get(metadata_url(base_url), timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError(
                    f"SimpleSAMLphp did not start: {(folder / 'server.log').read_text()[-2000:]}"
                )
            time.sleep(0.1)
        yield base_url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)
        log.close()


def metadata_url(base_url: str) -> str:
    return f"{base_url}/module.php/saml/sp/metadata.php/default-sp"


def login_url(base_url: str) -> str:
    return f"{base_url}/module.php/core/authenticate.php?as=default-sp"
