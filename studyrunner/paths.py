"""Where the repository's non-Python parts live (R scripts, report templates, suites)."""

from __future__ import annotations

import hashlib
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


# A DICOM UID (PS3.5 section 9: dot-separated numbers without leading zeros, at most 64
# characters); five or more components, so that version numbers ("3.0.1") never match.
_DICOM_UID = re.compile(r"(?<![\w.])[0-2](?:\.(?:0|[1-9][0-9]*)){4,}(?![\w.])")


def uid_pseudonym(uid: str) -> str:
    """A stable stand-in for a DICOM UID in a shared output: ``uid:`` and the first 12 hex
    digits of its SHA-256 (the same UID gives the same stand-in in every output)."""
    return "uid:" + hashlib.sha256(uid.encode("ascii")).hexdigest()[:12]


def shareable_text(text: str, base: Path, pseudonymise_uids: bool = True) -> str:
    """``text`` (an exclusion reason, a message) with every absolute path in it written
    relative to ``base`` (:func:`shareable_path`) and every DICOM UID replaced by its
    :func:`uid_pseudonym`: a hospital's UIDs carry its registered root and often the
    acquisition's date and time, which the de-identification profile of DICOM PS3.15
    Annex E replaces as well (``pseudonymise_uids=False`` keeps them: ``studyrunner validate``
    prints to the local console of the person who must find the series)."""
    text = _ABSOLUTE_PATH.sub(lambda match: shareable_path(match.group(0), base), text)
    if not pseudonymise_uids:
        return text
    return _DICOM_UID.sub(lambda match: uid_pseudonym(match.group(0)) if len(match.group(0)) <= 64
                          else match.group(0), text)
