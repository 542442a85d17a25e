"""Where GOV.UK Frontend's built files are, and the routes that serve them.

``govuk-frontend`` comes from the npm registry, pinned in ``package-lock.json`` and
installed by ``make install`` (``npm ci``) into ``node_modules/``; it is never copied into
the repository. The directory is found from ``CAREWALL_FRONTEND`` (the ``dist/govuk``
folder of the package, for an installed deployment) or from a ``node_modules`` folder in
the working directory or beside the source tree.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

__all__ = ["FRONTEND_VERSION", "frontend_dir", "mount_assets"]

FRONTEND_VERSION = "6.3.0"  # what govuk-frontend-jinja 4.1.0's macros were ported from
_DIST = Path("node_modules", "govuk-frontend", "dist", "govuk")


def frontend_dir() -> Path | None:
    """The ``dist/govuk`` folder of the installed GOV.UK Frontend, or None if absent."""
    configured = os.environ.get("CAREWALL_FRONTEND")
    candidates = [Path(configured)] if configured else []
    candidates += [Path.cwd() / _DIST, Path(__file__).resolve().parents[2] / _DIST]
    for folder in candidates:
        if (folder / "govuk-frontend.min.css").is_file():
            return folder
    return None


class _Immutable(StaticFiles):
    """Static files that browsers may cache: they change only with the pinned version."""

    def file_response(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "public, max-age=86400"
        return response


def mount_assets(app: FastAPI) -> bool:
    """Serve the stylesheet, script, fonts and images; False (pages unstyled) if absent."""
    folder = frontend_dir()
    if folder is None:
        return False
    app.mount("/assets", _Immutable(directory=folder / "assets"), name="assets")
    app.mount("/frontend", _Immutable(directory=folder), name="frontend")
    return True
