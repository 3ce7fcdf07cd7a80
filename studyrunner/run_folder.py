"""The run folder: one sub-folder per stage, stage fingerprints for resuming, the manifest.

One run at a time: a run takes the folder's lock file (``run.lock``: process id, host,
start time, protocol) and a second run into the same folder is refused naming the holder;
a lock left by a killed run (its process is gone on this host) is taken over. A folder
that is a file, not writable or on a full disk stops the run with :class:`RunFolderError`
(exit code 4) and the stages already finished stay on disk.

A stage is skipped when its folder holds a ``stage.json`` whose fingerprint equals the one
computed now: the fingerprint covers the stage's protocol sections, the fingerprints of the
stages it reads, the hashes of its input files and the studyrunner version. So a crashed
run resumes where it stopped, and editing only the report section re-renders only the
report.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from studyrunner import __version__
from studyrunner.errors import RunFolderError
from studyrunner.jsonable import to_jsonable

STAGE_FILE = "stage.json"
LOCK_FILE = "run.lock"
WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


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


def sha256_path(path: Path) -> str:
    """SHA-256 of a file, of a folder (its files' relative names and contents: a DICOM
    series), or ``"missing"`` for a path that does not exist (the stage that reads it
    excludes the case with its reason)."""
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    if path.is_dir():
        digest = hashlib.sha256()
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(f"{child.relative_to(path).as_posix()}:{sha256_file(child)}\n".encode())
        return digest.hexdigest()
    return "missing"


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
        if root.exists() and not root.is_dir():
            raise RunFolderError(f"{root}: --out names a file, not a folder; choose another run folder")
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunFolderError(f"{root}: cannot create the run folder ({exc.strerror})") from exc
        self.records: dict[str, StageRecord] = {}

    @contextmanager
    def locked(self, description: str) -> Iterator[None]:
        """Hold the folder's lock for the duration of a run (module docstring)."""
        lock = self.root / LOCK_FILE
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "what": description,
                  "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        for _ in range(2):
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._take_over_if_stale(lock)
                continue
            except OSError as exc:
                raise RunFolderError(f"{self.root}: the run folder is not writable ({exc.strerror})") from exc
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(holder, handle)
            break
        else:
            raise RunFolderError(f"{self.root}: could not take the run folder's lock ({lock})")
        try:
            yield
        finally:
            lock.unlink(missing_ok=True)

    def _take_over_if_stale(self, lock: Path) -> None:
        """Remove the lock of a run that is gone; raise naming the holder of a live one."""
        try:
            holder = json.loads(lock.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            holder = {}
        pid, host = holder.get("pid"), holder.get("host")
        if isinstance(pid, int) and host == socket.gethostname() and not _process_alive(pid):
            logging.getLogger("studyrunner").warning("run folder lock of process %d (gone) taken over", pid)
            lock.unlink(missing_ok=True)
            return
        if not holder:  # a lock being written this instant, or damaged: do not guess
            raise RunFolderError(f"{self.root}: the folder is locked ({lock} is unreadable); if no run uses it, "
                                 "delete the lock file")
        raise RunFolderError(
            f"{self.root}: another run is using this folder: process {pid} on {host}, {holder.get('what')}, "
            f"started {holder.get('started_utc')}. Wait for it or choose another --out (if that run is gone "
            f"from another host, delete {lock})")

    def stage_dir(self, name: str) -> Path:
        return self.root / name

    def fingerprint(self, name: str, settings: Any, upstream: Iterable[str] = (), inputs: Iterable[Path] = ()) -> str:
        """The identity of a stage's work: settings, upstream stages and input file contents."""
        return sha256_json({
            "stage": name,
            "studyrunner": __version__,
            "settings": settings,
            "upstream": {u: self.records[u].fingerprint for u in upstream},
            "inputs": {str(p): sha256_path(p) for p in inputs},
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
        started = time.perf_counter()
        try:
            stage_dir.mkdir(parents=True, exist_ok=True)
            work(stage_dir)
            seconds = time.perf_counter() - started
            write_json(marker, {"stage": name, "fingerprint": fingerprint, "status": "complete", "seconds": seconds})
        except OSError as exc:
            if exc.errno not in WRITE_ERRORS or not _inside(exc.filename, self.root):
                raise
            done = ", ".join(self.records) or "none"
            raise RunFolderError(f"{exc.filename}: cannot write the {name} stage ({exc.strerror}); finished "
                                 f"stages are kept ({done}): rerun the same command once this is fixed") from exc
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


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _inside(filename: Any, root: Path) -> bool:
    """Whether an OSError's file is in the run folder (not an input the stage reads)."""
    if not filename:
        return True
    try:
        return Path(str(filename)).resolve().is_relative_to(root.resolve())
    except OSError:
        return False
