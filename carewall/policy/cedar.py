"""cedarpy, loaded without running the policy syntax tree module it imports eagerly.

``import cedarpy`` runs ``from cedarpy import pst``: about fifty dataclasses describing
Cedar's policy syntax tree, read only by ``cedarpy.policies_to_pst``, which carewall never
calls. That import was the largest single piece of ``carewall decide``'s start-up (13 ms
of 99 on a quiet machine, 20–27 ms of 160 on a loaded one). So the first import of cedarpy
is made here, as the standard library's documentation approximates ``import_module``
(find the spec, make the module, put it in ``sys.modules``, run it), with one step more:
before the package runs, its ``pst`` attribute is set to that submodule wrapped in
:class:`importlib.util.LazyLoader`. The package's ``from cedarpy import pst`` then finds
the attribute and binds it without running it; it runs on its first attribute read, and
nothing else about cedarpy changes. (Putting the lazy module only in ``sys.modules`` is
not enough: the import system reads its ``__spec__``, which runs it.) Where cedarpy was
imported already (a test, a caller's own code) this does nothing.

Every module of carewall that calls Cedar imports it from here.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys

__all__ = ["cedar_ext", "cedarpy", "import_deferring"]


def import_deferring(package: str, submodule: str) -> bool:
    """Import ``package`` with its ``submodule`` deferred to first use; True if deferred.

    Nothing is done when the package is imported already or is not a package found on
    the path; then the ordinary import (which follows) runs it as usual.
    """
    name = f"{package}.{submodule}"
    if package in sys.modules or name in sys.modules:
        return False
    spec = importlib.util.find_spec(package)  # a top-level package: found, not imported
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return False
    sub_spec = importlib.machinery.PathFinder.find_spec(name, spec.submodule_search_locations)
    if sub_spec is None or sub_spec.loader is None:
        return False
    sub_spec.loader = importlib.util.LazyLoader(sub_spec.loader)
    sub = importlib.util.module_from_spec(sub_spec)
    sub_spec.loader.exec_module(sub)  # deferred: runs at the first attribute read
    module = importlib.util.module_from_spec(spec)
    setattr(module, submodule, sub)
    sys.modules[name] = sub
    sys.modules[package] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[package], sys.modules[name]
        raise
    return True


import_deferring("cedarpy", "pst")

import cedarpy  # noqa: E402  (after import_deferring, or its pst import would run)
from cedarpy import _internal as cedar_ext  # noqa: E402
