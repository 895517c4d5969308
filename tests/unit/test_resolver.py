"""``idp_core.resolver`` holds back the ``__init__`` of two Powertools packages (the event
handler, which imports every resolver Powertools has, and the event classes, which import
every event source's): the functions import the REST resolver's modules directly, and the
packages' own names still work, each loaded from its module when first asked for.

Each check runs in a fresh interpreter, since holding a package back changes ``sys.modules``."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from idp_core import resolver

# A package whose __init__ says when it runs and names what its modules define (by an absolute
# and a relative import, one renamed), with a module that imports a sibling the way Powertools'
# api_gateway does (``from package import submodule``).
_PACKAGE_FILES = {
    "__init__.py": (
        "print('init ran')\n"
        "from held.sub import VALUE as ALIAS\n"
        "from .sibling import NUMBER\n"
        "INIT_NAME = 'from init'\n"
    ),
    "sub.py": "print('sub ran')\nfrom held import sibling\nVALUE = sibling.NUMBER + 1\n",
    "sibling.py": "print('sibling ran')\nNUMBER = 41\n",
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


def test_a_held_back_package_loads_each_name_its_init_imports_from_that_module_alone(
    package_path: Path,
) -> None:
    out = run(
        """
        import sys
        from idp_core.resolver import hold_back_package_init
        hold_back_package_init("held")
        from held import NUMBER
        print("NUMBER", NUMBER, sorted(name for name in sys.modules if name.startswith("held")))
        from held import ALIAS
        print("ALIAS", ALIAS)
        import held.sub
        print(held.ALIAS is held.sub.VALUE, type(sys.modules["held"]).__name__)
        """,
        path=package_path,
    )
    assert out.splitlines() == [
        "sibling ran",
        "NUMBER 41 ['held', 'held.sibling']",
        "sub ran",
        "ALIAS 42",
        "True _HeldBackPackage",
    ]


def test_any_other_name_runs_the_init_once_and_is_answered_from_it(package_path: Path) -> None:
    out = run(
        """
        import sys
        from idp_core.resolver import hold_back_package_init
        hold_back_package_init("held")
        import held.sub
        from held import INIT_NAME
        print(INIT_NAME, held.ALIAS, held.NUMBER, type(sys.modules["held"]).__name__)
        try:
            from held import MISSING
        except ImportError as exc:
            print(f"refused: {type(exc).__name__}")
        """,
        path=package_path,
    )
    # The init runs once, when INIT_NAME is asked for; the modules it imports were loaded already.
    assert out.splitlines() == [
        "sub ran",
        "sibling ran",
        "init ran",
        "from init 42 41 module",
        "refused: ImportError",
    ]


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
    assert out.splitlines()[-1] == "module True"


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


def test_the_functions_resolver_loads_alone_and_powertools_names_still_import() -> None:
    """The REST resolver comes without AppSync's asyncio or the other event sources' classes;
    Powertools' names for the other resolvers and events still import, the same classes as
    from their own modules, and so does everything the event handler package names."""
    out = run(
        """
        import json, sys
        from idp_core.resolver import APIGatewayRestResolver, APIGatewayRouter, Response
        unused = ("asyncio", "aws_lambda_powertools.event_handler.appsync",
                  "aws_lambda_powertools.utilities.data_classes.sqs_event")
        before = sorted(name for name in unused if name in sys.modules)
        from aws_lambda_powertools.event_handler import APIGatewayRestResolver as named, AppSyncResolver
        from aws_lambda_powertools.event_handler.appsync import AppSyncResolver as own
        from aws_lambda_powertools.utilities.data_classes import SQSEvent
        from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSEvent as own_event
        import aws_lambda_powertools.event_handler as package
        everything = [getattr(package, name) for name in package.__all__]
        same = [named is APIGatewayRestResolver, AppSyncResolver is own, SQSEvent is own_event]
        after = "asyncio" in sys.modules
        print(json.dumps({"before": before, "same": same, "all": len(everything), "asyncio": after}))
        """
    )
    assert json.loads(out) == {"before": [], "same": [True, True, True], "all": 20, "asyncio": True}
