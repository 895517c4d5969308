"""``idp_core.resolver`` holds back the ``__init__`` of Powertools' event handler package, which
imports every resolver Powertools has: the functions import the REST resolver's modules
directly, and the package's own names still work, loaded when first asked for.

Each check runs in a fresh interpreter, since holding a package back changes ``sys.modules``."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from idp_core import resolver

# A package whose __init__ says when it runs, with a submodule that imports a sibling the way
# Powertools' api_gateway does (``from package import submodule``).
_PACKAGE_FILES = {
    "__init__.py": "print('init ran')\nfrom held.sub import VALUE as ALIAS\nINIT_NAME = 'from init'\n",
    "sub.py": "from held import sibling\nVALUE = sibling.NUMBER + 1\n",
    "sibling.py": "NUMBER = 41\n",
}


def run(code: str, *, path: Path | None = None) -> str:
    paths = [str(Path(resolver.__file__).parents[1]), *([str(path)] if path else [])]
    completed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": ":".join(paths), "PYTHONDONTWRITEBYTECODE": "1"},
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout


@pytest.fixture
def package_path(tmp_path: Path) -> Path:
    (tmp_path / "held").mkdir()
    for name, source in _PACKAGE_FILES.items():
        (tmp_path / "held" / name).write_text(source)
    return tmp_path


def test_a_held_back_package_runs_its_init_once_on_the_first_name_that_is_not_a_submodule(
    package_path: Path,
) -> None:
    out = run(
        """
        import sys
        from idp_core.resolver import hold_back_package_init
        hold_back_package_init("held")
        from held.sub import VALUE
        import held
        print("submodules", VALUE, held.sibling.NUMBER)
        from held import INIT_NAME, ALIAS
        print(INIT_NAME, ALIAS)
        print(held.INIT_NAME, type(sys.modules["held"]).__name__)
        """,
        path=package_path,
    )
    assert out.splitlines() == ["submodules 42 41", "init ran", "from init 42", "from init module"]


def test_a_name_the_package_does_not_have_is_an_import_error_after_its_init(package_path: Path) -> None:
    out = run(
        """
        from idp_core.resolver import hold_back_package_init
        hold_back_package_init("held")
        try:
            from held import MISSING
        except ImportError as exc:
            print(f"refused: {type(exc).__name__}")
        """,
        path=package_path,
    )
    assert out.splitlines() == ["init ran", "refused: ImportError"]


def test_a_package_imported_before_is_left_as_it_is(package_path: Path) -> None:
    out = run(
        """
        import held
        from idp_core.resolver import hold_back_package_init
        hold_back_package_init("held")
        import sys
        print(type(sys.modules["held"]).__name__, sys.modules["held"] is held)
        """,
        path=package_path,
    )
    assert out.splitlines() == ["init ran", "module True"]


def test_only_an_installed_package_can_be_held_back() -> None:
    out = run(
        """
        from idp_core.resolver import hold_back_package_init
        for name in ("no_such_package_here", "colorsys"):
            try:
                hold_back_package_init(name)
            except ImportError as exc:
                print(exc)
        """
    )
    assert out.splitlines() == [
        "no_such_package_here is not an installed package",
        "colorsys is not an installed package",
    ]


def test_the_functions_resolver_loads_without_the_other_resolvers_and_they_still_import() -> None:
    """The REST resolver comes without AppSync's asyncio; Powertools' names for the other
    resolvers still import, the same classes as from their own modules."""
    out = run(
        """
        import json, sys
        from idp_core.resolver import APIGatewayRestResolver, APIGatewayRouter, Response
        unused = ("asyncio", "aws_lambda_powertools.event_handler.appsync")
        before = sorted(name for name in unused if name in sys.modules)
        from aws_lambda_powertools.event_handler import APIGatewayRestResolver as named, AppSyncResolver
        from aws_lambda_powertools.event_handler.appsync import AppSyncResolver as own
        from aws_lambda_powertools.event_handler.api_gateway import Response as response
        print(json.dumps({"before": before, "same": [named is APIGatewayRestResolver, AppSyncResolver is own,
                          response is Response], "asyncio": "asyncio" in sys.modules}))
        """
    )
    assert json.loads(out) == {"before": [], "same": [True, True, True], "asyncio": True}
