"""The parts of Powertools' event handler the functions use: the REST API resolver, its
router and ``Response``, imported without the rest of ``aws_lambda_powertools.event_handler``.

That package's ``__init__`` imports every resolver Powertools has (AppSync with asyncio,
Bedrock agents, AppSync events, function URLs, VPC Lattice, the HTTP resolver) to name them:
about 60 modules and a fifth of ``import boto3`` at every cold start, for none of them. So
the package is put in ``sys.modules`` with its ``__init__`` held back, the modules below are
imported from it directly, and the first other name anyone asks of the package (``from
aws_lambda_powertools.event_handler import AppSyncResolver``) runs the ``__init__`` then:
everything still works, only later.

Every module of ours imports these names from here, never from the package, so that the
package is held back before anything imports it.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType
from typing import Any

EVENT_HANDLER = "aws_lambda_powertools.event_handler"


class _HeldBackPackage(ModuleType):
    """A package whose ``__init__`` has not run yet: its submodules import as usual, and the
    first other name looked up runs the ``__init__`` (once) and answers from it."""

    def __getattr__(self, name: str) -> Any:
        submodule = f"{self.__name__}.{name}"
        # ``from package import submodule`` asks the package for the name before importing it.
        if not name.startswith("__") and importlib.util.find_spec(submodule) is not None:
            return importlib.import_module(submodule)
        package: ModuleType = self
        package.__class__ = ModuleType
        spec = package.__spec__
        if spec is None or spec.loader is None:
            raise ImportError(f"{package.__name__} cannot be initialised: it has no loader")
        spec.loader.exec_module(package)
        return getattr(package, name)


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

from aws_lambda_powertools.event_handler.api_gateway import APIGatewayRestResolver, Response  # noqa: E402
from aws_lambda_powertools.event_handler.router import APIGatewayRouter  # noqa: E402

__all__ = [
    "EVENT_HANDLER",
    "APIGatewayRestResolver",
    "APIGatewayRouter",
    "Response",
    "hold_back_package_init",
]
