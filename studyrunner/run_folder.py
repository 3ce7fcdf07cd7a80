"""The run folder: one sub-folder per stage, stage fingerprints for resuming, the manifest.

A stage is skipped when its folder holds a ``stage.json`` whose fingerprint equals the one
computed now: the fingerprint covers the stage's protocol sections, the fingerprints of the
stages it reads, the hashes of its input files and the studyrunner version. So a crashed
run resumes where it stopped, and editing only the report section re-renders only the
report.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studyrunner import __version__
from studyrunner.jsonable import to_jsonable

STAGE_FILE = "stage.json"


_FILE_HASHES: dict[tuple[str, int, int], str] = {}


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's content, remembered per (path, mtime, size) within the process."""
    stat = Path(path).stat()
    key = (str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size)
    if key not in _FILE_HASHES:
        _FILE_HASHES[key] = _hash_file(path, chunk)
    return _FILE_HASHES[key]


def _hash_file(path: Path, chunk: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sha256_json(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def write_json(path: Path, payload: Any) -> None:
    """Write JSON atomically (temporary file, then rename): a crash never leaves half a file.

    ``payload`` is cleaned by :func:`studyrunner.jsonable.to_jsonable` (NaN -> null).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(to_jsonable(payload), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@dataclass
class StageRecord:
    name: str
    fingerprint: str
    seconds: float
    reused: bool


class RunFolder:
    """A study run on disk."""

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.records: dict[str, StageRecord] = {}

    def stage_dir(self, name: str) -> Path:
        return self.root / name

    def fingerprint(self, name: str, settings: Any, upstream: Iterable[str] = (), inputs: Iterable[Path] = ()) -> str:
        """The identity of a stage's work: settings, upstream stages and input file contents."""
        return sha256_json({
            "stage": name,
            "studyrunner": __version__,
            "settings": settings,
            "upstream": {u: self.records[u].fingerprint for u in upstream},
            "inputs": {str(p): sha256_file(p) for p in inputs},
        })

    def run_stage(self, name: str, fingerprint: str, work: Callable[[Path], None]) -> StageRecord:
        """Run ``work(stage_dir)`` unless a finished stage with the same fingerprint is on disk."""
        stage_dir = self.stage_dir(name)
        marker = stage_dir / STAGE_FILE
        if marker.exists():
            previous = read_json(marker)
            if previous.get("fingerprint") == fingerprint and previous.get("status") == "complete":
                record = StageRecord(name, fingerprint, float(previous.get("seconds", 0.0)), reused=True)
                self.records[name] = record
                logging.getLogger("studyrunner").info("stage %s: unchanged, reused", name)
                return record
            shutil.rmtree(stage_dir)
        stage_dir.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        work(stage_dir)
        seconds = time.perf_counter() - started
        write_json(marker, {"stage": name, "fingerprint": fingerprint, "status": "complete", "seconds": seconds})
        record = StageRecord(name, fingerprint, seconds, reused=False)
        self.records[name] = record
        logging.getLogger("studyrunner").info("stage %s: done in %.1f s", name, seconds)
        return record

    def timings(self) -> dict[str, float]:
        return {name: round(rec.seconds, 3) for name, rec in self.records.items()}


def attach_log_file(run_dir: Path) -> logging.Handler:
    """Quiet, complete logs in the run folder (the terminal shows progress only)."""
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(run_dir / "logs" / "run.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return handler
