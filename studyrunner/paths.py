"""Where the repository's non-Python parts live (R scripts, report templates, suites)."""

from __future__ import annotations

import os
import re
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent


def repo_folder(name: str, env_var: str) -> Path:
    """A top-level folder of the repository (``rscripts``, ``reports``, ``validation``),
    overridable by an environment variable for installed copies."""
    override = os.environ.get(env_var)
    return Path(override) if override else REPO_DIR / name


_ABSOLUTE_PATH = re.compile(r"(?<![\w.~])/[^\s:;,'\"()\[\]]+")


def shareable_path(path: str | Path, base: Path) -> str:
    """``path`` as written in an output meant to be shared (results.json, the report, a
    bundle, manifest.json): relative to ``base`` (the protocol's folder), so no directory
    of the machine that ran the study leaves it."""
    return Path(os.path.relpath(Path(path), base)).as_posix()


def shareable_text(text: str, base: Path) -> str:
    """``text`` (an exclusion reason, a message) with every absolute path in it written
    relative to ``base`` (:func:`shareable_path`)."""
    return _ABSOLUTE_PATH.sub(lambda match: shareable_path(match.group(0), base), text)
