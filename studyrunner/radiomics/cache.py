"""The per-case radiomics cache: one JSON file per case, named by what its features depend on.

A case's file is ``<patient_id>-<key>.json`` in the cache folder, holding
``{"patient_id", "features": {mask_name: {feature: value}}}``. The key is a SHA-256 over
the cache layout (:data:`CACHE_FORMAT`), the PyRadiomics parameter dict, the PyRadiomics
version, and the bytes of the image and of every mask (:func:`input_digest`), so a case
is recomputed only when its inputs or the settings change, and never read stale.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import radiomics

from studyrunner.run_folder import sha256_file

# Salt of the cache keys: changed when the cache file's layout changes.
CACHE_FORMAT = "studyrunner-radiomics-2: features per mask"

CaseFeatures = dict[str, dict[str, float]]  # {mask_name: {feature: value}}


def cache_file(
    cache_dir: Path, patient_id: str, params: Mapping[str, Any], image_digest: str, mask_digests: Mapping[str, str]
) -> Path:
    """Where the features of this case, under these settings and inputs, are cached."""
    return cache_dir / f"{_safe_name(patient_id)}-{_cache_key(params, image_digest, mask_digests)}.json"


def read_cache(path: Path) -> CaseFeatures | None:
    """The cached ``{mask_name: features}``, or None when there is no such file."""
    if not path.exists():
        return None
    return json.loads(path.read_text())["features"]


def write_cache(path: Path, patient_id: str, features: CaseFeatures) -> None:
    """Write atomically, so an interrupted run never leaves a half-written cache file."""
    temporary = path.with_suffix(f".tmp{os.getpid()}")
    temporary.write_text(json.dumps({"patient_id": patient_id, "features": features}, indent=1))
    os.replace(temporary, path)


def input_digest(path: Path) -> str:
    """SHA-256 of an image's bytes: the file, a detached header's data file(s), or every
    file of a DICOM series folder. Raises ``OSError`` when a file cannot be read."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path, *_detached_data_files(path)]
    digest = hashlib.sha256()
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        digest.update(sha256_file(file).encode())
    return digest.hexdigest()


def _cache_key(params: Mapping[str, Any], image_digest: str, mask_digests: Mapping[str, str]) -> str:
    digest = hashlib.sha256()
    digest.update(CACHE_FORMAT.encode())
    digest.update(json.dumps(params, sort_keys=True, default=str).encode())
    digest.update(str(radiomics.__version__).encode())
    digest.update(image_digest.encode())
    for name in sorted(mask_digests):
        digest.update(json.dumps([name, mask_digests[name]]).encode())
    return digest.hexdigest()[:16]


def _detached_data_files(header: Path) -> list[Path]:
    """Data files named in a ``.mhd`` (ElementDataFile) or ``.nhdr`` (data file) header.

    A multi-file form (LIST or a pattern) counts every other file of the header's folder.
    """
    pattern = {".mhd": r"^\s*ElementDataFile\s*=\s*(.+?)\s*$", ".nhdr": r"^\s*data ?file\s*:\s*(.+?)\s*$"}
    regex = pattern.get(header.suffix.lower())
    if regex is None:
        return []
    match = re.search(regex, header.read_text(errors="replace"), flags=re.MULTILINE | re.IGNORECASE)
    if match is None or match.group(1) == "LOCAL":
        return []
    data_file = header.parent / match.group(1)
    if data_file.is_file():
        return [data_file]
    return sorted(p for p in header.parent.iterdir() if p.is_file() and p != header)


def _safe_name(patient_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", patient_id)
