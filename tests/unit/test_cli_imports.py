"""What starting the `idp` CLI loads: every noun module registers its parser, so each is
imported by every command, and a heavy library imported by one would slow them all."""

from __future__ import annotations

import json
import subprocess
import sys

# The directory client (ldap3, pyasn1), the local stack's embedded AWS (moto), boto3 (only
# --stack and `idp metadata` need more than botocore), SAML XML (lxml, signxml), page
# templates (jinja2) and phone numbers load where a command uses them, not at start.
NOT_AT_START = ("ldap3", "pyasn1", "moto", "boto3", "lxml", "signxml", "jinja2", "phonenumbers")

_LOADED = "import json, sys, idp_cli.main; print(json.dumps(sorted(sys.modules)))"


def _loaded_by(code: str) -> set[str]:
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return {name.split(".")[0] for name in json.loads(output)}


def test_starting_the_cli_loads_no_heavy_library() -> None:
    loaded = _loaded_by(_LOADED)

    # The check sees what the import loads: the core and the directory settings are there.
    assert {"idp_cli", "idp_core", "pynamodb", "botocore"} <= loaded
    assert not loaded & set(NOT_AT_START), sorted(loaded & set(NOT_AT_START))


def test_the_directory_settings_the_cli_takes_its_switches_from_load_no_ldap_client() -> None:
    loaded = _loaded_by(
        "import json, sys, idp_core.directories.settings as s; assert s.SWITCHES;"
        " print(json.dumps(sorted(sys.modules)))"
    )

    assert "idp_core" in loaded
    assert not loaded & {"ldap3", "pyasn1"}
