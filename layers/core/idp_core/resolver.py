"""The parts of Powertools' event handler the functions use: the REST API resolver, its
router and ``Response``, imported without the rest of ``aws_lambda_powertools.event_handler``.

That package's ``__init__`` imports every resolver Powertools has (AppSync with asyncio,
Bedrock agents, AppSync events, function URLs, VPC Lattice, the HTTP resolver) to name them,
and the REST resolver imports its event classes from ``utilities.data_classes``, whose
``__init__`` imports the classes of every event source Lambda has (SQS, S3, Kinesis,
CodePipeline, ...): about 80 modules at every cold start, of which the REST resolver needs
ten. So both packages are put in ``sys.modules`` with their ``__init__`` held back: their
modules import as usual, a name the ``__init__`` imports from one of them comes from that
module alone (``from aws_lambda_powertools.event_handler import AppSyncResolver`` loads
AppSync's), and any other name runs the ``__init__`` then: everything still works, and only
what is used loads.

Every module of ours imports these names from here, never from the packages, so that the
packages are held back before anything imports them.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

EVENT_HANDLER = "aws_lambda_powertools.event_handler"
EVENT_CLASSES = "aws_lambda_powertools.utilities.data_classes"


class _HeldBackPackage(ModuleType):
    """A package whose ``__init__`` has not run yet: its submodules import as usual, a name
    its ``__init__`` imports from one of them comes from that submodule, and any other name
    runs the ``__init__`` (once) and is answered from it."""

    def __getattr__(self, name: str) -> Any:
        if not name.startswith("__"):
            submodule = f"{self.__name__}.{name}"
            # ``from package import submodule`` asks the package for the name before importing it.
            if importlib.util.find_spec(submodule) is not None:
                return importlib.import_module(submodule)
            origin = _imported_names(self).get(name)
            if origin is not None:
                value = getattr(importlib.import_module(origin[0]), origin[1])
                setattr(self, name, value)
                return value
        package: ModuleType = self
        package.__class__ = ModuleType
        spec = package.__spec__
        if spec is None or spec.loader is None:
            raise ImportError(f"{package.__name__} cannot be initialised: it has no loader")
        spec.loader.exec_module(package)
        return getattr(package, name)


def _imported_names(package: ModuleType) -> dict[str, tuple[str, str]]:
    """The names the package's ``__init__`` imports from its own modules at its top level
    (``from .events import Event``), each with that module and its name there."""
    found: dict[str, tuple[str, str]] = {}
    spec = package.__spec__
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return found
    for node in ast.parse(Path(spec.origin).read_bytes()).body:
        if not isinstance(node, ast.ImportFrom):
            continue
        module = node.module or ""
        if node.level == 1:
            module = f"{package.__name__}.{module}" if module else package.__name__
        if node.level > 1 or not module.startswith(f"{package.__name__}."):
            continue
        for alias in node.names:
            found[alias.asname or alias.name] = (module, alias.name)
    return found


def hold_back_package_init(name: str) -> None:
    """Make ``name``, a package nobody imported yet, importable without running its
    ``__init__`` until a name other than a submodule is asked of it. A package already
    imported is left as it is."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.submodule_search_locations is None:
        raise ImportError(f"{name} is not an installed package")
    package = importlib.util.module_from_spec(spec)
    package.__class__ = _HeldBackPackage
    sys.modules[name] = package
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, package)


hold_back_package_init(EVENT_HANDLER)
hold_back_package_init(EVENT_CLASSES)

from aws_lambda_powertools.event_handler.api_gateway import APIGatewayRestResolver, Response  # noqa: E402
from aws_lambda_powertools.event_handler.router import APIGatewayRouter  # noqa: E402

__all__ = [
    "EVENT_HANDLER",
    "APIGatewayRestResolver",
    "APIGatewayRouter",
    "Response",
    "hold_back_package_init",
]
