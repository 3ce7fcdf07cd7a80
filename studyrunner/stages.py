"""What each stage is: the protocol sections it reads, the stages it reads from, its code.

A stage declares the protocol sections it reads (``reads``, dotted paths such as
``statistics`` or ``study.seed``). The runner gives the stage a protocol in which only those
sections can be read (:func:`declared_protocol`: reading any other is a
:class:`StageContractError` naming the stage and the section), and the stage's fingerprint
covers exactly those sections' values (:func:`section_values`) plus its code. A stage's code
is the studyrunner modules its entry module imports, followed transitively
(:func:`stage_code`), so a change to any of them reruns the stage, and no list of files is
kept by hand.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from studyrunner.errors import StudyError
from studyrunner.protocol import AnyLoaded, ExternalValidationProtocol, LoadedFile, Protocol

PACKAGE_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class StageSpec:
    """One stage of a run: its folder name, the protocol sections it reads, the stages whose
    folders it reads, and the module holding its entry point."""

    name: str
    reads: tuple[str, ...]
    upstream: tuple[str, ...]
    entry: str


class StageContractError(StudyError):
    """A stage read a protocol section it did not declare (a programming error in studyrunner)."""


class Undeclared:
    """Stands in for a protocol section a stage did not declare; any use of it is an error."""

    def __init__(self, stage: str, path: str):
        self._stage = stage
        self._path = path

    def _refuse(self) -> StageContractError:
        return StageContractError(f"stage {self._stage!r} reads protocol section {self._path!r}, which it does "
                                  f"not declare in its StageSpec.reads (its fingerprint would miss it)")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise self._refuse()

    def __bool__(self) -> bool:
        raise self._refuse()

    def __iter__(self) -> Any:
        raise self._refuse()

    def __getitem__(self, key: Any) -> Any:
        raise self._refuse()


def _tree(paths: tuple[str, ...]) -> dict[str, Any]:
    """Dotted paths as a tree: ("study.seed", "cohort") -> {"study": {"seed": True}, "cohort": True}."""
    tree: dict[str, Any] = {}
    for path in paths:
        node = tree
        parts = path.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if child is True:
                break
            node = child
        else:
            node[parts[-1]] = True
    return tree


def _restrict(model: BaseModel, tree: dict[str, Any], stage: str, prefix: str) -> BaseModel:
    update: dict[str, Any] = {}
    for field in type(model).model_fields:
        declared = tree.get(field)
        if declared is True:
            continue
        value = getattr(model, field)
        if isinstance(declared, dict) and isinstance(value, BaseModel):
            update[field] = _restrict(value, declared, stage, f"{prefix}{field}.")
        else:
            update[field] = Undeclared(stage, f"{prefix}{field}")
    return model.model_copy(update=update)


def declared_protocol(loaded: AnyLoaded, spec: StageSpec) -> AnyLoaded:
    """``loaded`` with only the sections ``spec`` reads readable (the file, its hash and path
    resolution stay as they are)."""
    restricted = _restrict(loaded.protocol, _tree(spec.reads), spec.name, "")
    if isinstance(restricted, Protocol):
        return LoadedFile(restricted, loaded.path, loaded.text)
    assert isinstance(restricted, ExternalValidationProtocol)
    return LoadedFile(restricted, loaded.path, loaded.text)


def section_values(protocol: Protocol | ExternalValidationProtocol, reads: tuple[str, ...]) -> dict[str, Any]:
    """The JSON value of each declared section: what a stage's fingerprint covers."""
    values: dict[str, Any] = {}
    for path in reads:
        value: Any = protocol
        for part in path.split("."):
            value = getattr(value, part)
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json")
        elif isinstance(value, dict):
            value = {k: v.model_dump(mode="json") if isinstance(v, BaseModel) else v for k, v in value.items()}
        elif isinstance(value, list):
            value = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
        values[path] = value
    return values


def _module_file(module: str) -> Path | None:
    """The file of a studyrunner module (a package's ``__init__.py``), None outside studyrunner."""
    if module != "studyrunner" and not module.startswith("studyrunner."):
        return None
    parts = module.split(".")[1:]
    if not parts:
        return PACKAGE_DIR / "__init__.py"
    relative = Path(*parts)
    for candidate in (PACKAGE_DIR / relative.with_suffix(".py"), PACKAGE_DIR / relative / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_modules(path: Path, module: str) -> set[str]:
    """The modules ``path`` imports anywhere in its body (function-level imports included),
    with a package's ``__init__`` for each."""
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import module`
    parents = {".".join(name.split(".")[:i]) for name in found for i in range(2, name.count(".") + 1)}
    return found | parents


@cache
def stage_code(entry: str) -> tuple[Path, ...]:
    """The studyrunner files ``entry`` imports, followed transitively (sorted)."""
    seen: dict[str, Path] = {}
    pending = [entry]
    while pending:
        module = pending.pop()
        if module in seen:
            continue
        path = _module_file(module)
        if path is None:
            continue
        seen[module] = path
        pending.extend(_imported_modules(path, module) - set(seen))
    return tuple(sorted(set(seen.values())))
