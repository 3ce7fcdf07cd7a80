"""Where the repository's non-Python parts live (R scripts, report templates, suites)."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent


def repo_folder(name: str, env_var: str) -> Path:
    """A top-level folder of the repository (``rscripts``, ``reports``, ``validation``),
    overridable by an environment variable for installed copies."""
    override = os.environ.get(env_var)
    return Path(override) if override else REPO_DIR / name
