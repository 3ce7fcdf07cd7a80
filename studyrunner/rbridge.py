"""The single place where Python talks to R.

R runs embedded in the Python process through rpy2 and is started lazily, on the first
call that needs it: importing :mod:`studyrunner` never starts R. R code lives in
``rscripts/<topic>.R`` as plain functions a statistician can review; :func:`r_function`
sources a script once and returns a Python callable for one of its functions. A script
that uses functions of another says so on a ``# requires: other.R`` line; the bridge
sources the required scripts first, into the same environment.

Conversion rules
----------------
Python -> R (:func:`to_r`): a pandas DataFrame becomes a data.frame (rpy2's
``pandas2ri``; its index becomes the row names, which R error messages quote); a dict of
numbers becomes a named numeric vector, any other dict a named list; str/int/float/bool and
sequences of them become atomic vectors; ``None`` becomes ``NULL``.

R -> Python (:func:`to_python`): ``NULL`` -> ``None``; a data.frame -> ``pandas.DataFrame``;
a named list -> ``dict``, an unnamed list -> ``list``; an atomic vector -> a scalar when it
has length one and no names, a ``dict`` when it has names, a ``list`` otherwise; a matrix ->
a list of rows. ``NA`` (and ``NaN``) become ``None`` outside data frames and ``NaN`` (or
``None`` in text columns) inside them. R scripts therefore return variable-length results as
data.frame columns and ``unname()`` scalars.

Result shapes
-------------
R has one number type for counts and measurements alike, so a count comes back as a float
(``12.0``). :func:`r_function` takes the result's declared shape: ``counts`` names the
entries that are whole numbers (``"n"`` a top-level entry, ``"groups.n"`` the column ``n``
of the data frame ``groups`` or the entry ``n`` of a nested list, ``"settings.*"`` every
entry of ``settings``), and the bridge turns them into ``int`` (``None``/NA, and a number
that is not whole, stay as they are). It is the only place that does so.

Errors raised by R become :class:`RError` naming the R function, or, for a function
declared with ``input_errors=True`` (its errors are about the caller's data: a missing
column, a missing value), :class:`studyrunner.errors.InputError` with R's message. R
warnings are re-issued as Python :class:`RWarning`. All calls into R are serialised by one
lock (R is single threaded). JSON cleaning of the results is
:func:`studyrunner.jsonable.to_jsonable`.

The session attaches the survival package (as ``library(survival)`` in an R console): the
scripts call ``survival::`` explicitly, but CRAN packages that do not import survival
evaluate ``Surv(...)`` formulas unqualified (timeROC 0.4.1's ``iid = TRUE`` path through
``pec::ipcw``) and stop with 'could not find function "Surv"' without it.
"""

from __future__ import annotations

import math
import os
import re
import threading
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from studyrunner.errors import InputError

RSCRIPTS_ENV_VAR = "STUDYRUNNER_RSCRIPTS"
"""Environment variable that overrides the folder holding the R scripts."""

_NA_INTEGER = np.iinfo(np.int32).min  # R's NA for integer and logical vectors

_REQUIRES_LINE = re.compile(r"^#\s*requires:\s*(?P<scripts>.+?)\s*$")

# R-side plumbing of the bridge: call a function, collecting its warnings and turning an
# error into a value (so that the message reaches Python intact), with optional seeding.
_BRIDGE_R_CODE = """
list(
  call = function(f, args, seed) {
    seen <- character(0)
    if (!is.null(seed)) {
      set.seed(seed, kind = "Mersenne-Twister", normal.kind = "Inversion",
               sample.kind = "Rejection")
    }
    value <- tryCatch(
      withCallingHandlers(
        do.call(f, args),
        warning = function(w) {
          seen <<- c(seen, conditionMessage(w))
          invokeRestart("muffleWarning")
        }),
      error = function(e) structure(list(message = conditionMessage(e)),
                                    class = "studyrunner_r_error"))
    if (inherits(value, "studyrunner_r_error")) {
      return(list(ok = FALSE, message = value$message, warnings = seen))
    }
    list(ok = TRUE, value = value, warnings = seen)
  },
  versions = function(packages) {
    list(r = paste(R.version$major, R.version$minor, sep = "."),
         r_version_string = R.version.string,
         packages = lapply(setNames(packages, packages), function(p) {
           tryCatch(utils::packageDescription(p, fields = "Version"),
                    warning = function(w) NULL, error = function(e) NULL)
         }))
  },
  available = function(name) {
    suppressWarnings(suppressMessages(requireNamespace(name, quietly = TRUE)))
  },
  new_env = function() new.env(parent = globalenv())
)
"""


class RError(RuntimeError):
    """An R function called through the bridge stopped with an error."""

    def __init__(self, function: str, r_message: str) -> None:
        self.function = function
        self.r_message = r_message
        super().__init__(f"R function {function} failed: {r_message}")


class RWarning(UserWarning):
    """A warning raised by R during a call through the bridge."""


def rscripts_dir() -> Path:
    """Folder of the R scripts: ``$STUDYRUNNER_RSCRIPTS`` or ``<repo root>/rscripts``.

    The repository root is the parent of the ``studyrunner`` package folder.
    """
    override = os.environ.get(RSCRIPTS_ENV_VAR)
    if override:
        return Path(override)
    return Path(__file__).resolve().parent.parent / "rscripts"


def required_scripts(path: Path) -> list[str]:
    """Scripts named on ``# requires: a.R, b.R`` lines of an R script (without ``.R``)."""
    names: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _REQUIRES_LINE.match(line)
        if match:
            names.extend(item.strip().removesuffix(".R") for item in match.group("scripts").split(","))
    return names


class _RSession:
    """Embedded R, the bridge's R helpers and one R environment per sourced script.

    Each script is sourced into its own environment (child of the global environment),
    together with the scripts it requires, so that functions of different scripts cannot
    overwrite each other.
    """

    def __init__(self) -> None:
        import rpy2.robjects as ro

        self.ro = ro
        ro.r("suppressPackageStartupMessages(library(survival))")
        self.helpers = ro.r(_BRIDGE_R_CODE)
        self.envs: dict[Path, Any] = {}

    def call(self, label: str, function: Any, args: Sequence[Any],
             kwargs: Mapping[str, Any], seed: int | None = None) -> Any:
        """Call an R function with Python arguments; return the raw R value."""
        r_args = self.ro.r["list"](*[to_r(a) for a in args],
                                   **{k: to_r(v) for k, v in kwargs.items()})
        r_seed = self.ro.NULL if seed is None else self.ro.IntVector([int(seed)])
        outcome = self.helpers.rx2("call")(function, r_args, r_seed)
        for message in outcome.rx2("warnings"):
            warnings.warn(f"R function {label}: {message}", RWarning, stacklevel=4)
        if not outcome.rx2("ok")[0]:
            raise RError(label, str(outcome.rx2("message")[0]))
        return outcome.rx2("value")

    def script_env(self, script: str) -> Any:
        """The environment of ``<rscripts>/<script>.R``, sourced on first use."""
        path = (rscripts_dir() / f"{script}.R").resolve()
        if path not in self.envs:
            env = self.helpers.rx2("new_env")()
            self._source_into(path, env, frozenset())
            self.envs[path] = env
        return self.envs[path]

    def _source_into(self, path: Path, env: Any, loading: frozenset[Path]) -> None:
        """Source the scripts ``path`` requires (recursively), then ``path``, into ``env``."""
        if not path.is_file():
            raise FileNotFoundError(f"R script not found: {path}")
        if path in loading:
            raise RError(f"source('{path}')", "circular '# requires:' chain")
        for dependency in required_scripts(path):
            self._source_into((path.parent / f"{dependency}.R").resolve(), env,
                              loading | {path})
        self.call(f"source('{path}')", self.ro.r["sys.source"], [str(path)], {"envir": env})

    def find(self, script: str, name: str) -> Any:
        """The R function ``name`` defined by ``script``.R (sourcing it if needed)."""
        env = self.script_env(script)
        if name not in env:
            raise RError(f"{script}.R::{name}", f"no function '{name}' in {script}.R")
        return env[name]


_lock = threading.RLock()
_session: _RSession | None = None


def _r() -> _RSession:
    """The embedded R session, started on first use."""
    global _session
    with _lock:
        if _session is None:
            _session = _RSession()
        return _session


@contextmanager
def _in_r() -> Iterator[_RSession]:
    """The R session, held by this thread, with rpy2's default conversion rules in force.

    rpy2 keeps its conversion rules in a ``contextvars.ContextVar``, which a thread other
    than the one that imported rpy2 does not inherit: a Dask worker runs each task in such a
    thread, and there every call would stop with "Conversion rules ... appear to be missing"."""
    with warnings.catch_warnings():
        # A Dask worker starts R (on importing rpy2.robjects) in a task thread; rpy2 warns that
        # Ctrl-C cannot then interrupt R. The worker is stopped by its nanny, never by Ctrl-C.
        warnings.filterwarnings("ignore", message="R is not initialized by the main thread")
        import rpy2.robjects as ro
    from rpy2.robjects.conversion import localconverter

    with _lock, localconverter(ro.default_converter):
        yield _r()


class RFunction:
    """A Python callable for an R function defined in ``rscripts/<script>.R``.

    Nothing happens in R until the first call. Arguments are converted with :func:`to_r`,
    the result with :func:`to_python`, then its declared ``counts`` become ``int`` (see
    the module docstring). ``r_seed`` (keyword) calls ``set.seed(r_seed, kind =
    "Mersenne-Twister", normal.kind = "Inversion", sample.kind = "Rejection")``
    immediately before the function, so that R's random numbers are reproducible from a
    seed held in Python. With ``input_errors`` an R error is raised as
    :class:`~studyrunner.errors.InputError` ``"<name>: <R message>"``.
    """

    def __init__(self, script: str, name: str, counts: Sequence[str] = (),
                 input_errors: bool = False) -> None:
        self.script = script
        self.name = name
        self.counts = tuple(counts)
        self.input_errors = input_errors

    @property
    def label(self) -> str:
        return f"{self.script}.R::{self.name}"

    def __call__(self, *args: Any, r_seed: int | None = None, **kwargs: Any) -> Any:
        try:
            with _in_r() as session:
                function = session.find(self.script, self.name)
                value = to_python(session.call(self.label, function, args, kwargs, r_seed))
        except RError as error:
            if self.input_errors:
                raise InputError(f"{self.name}: {error.r_message}") from error
            raise
        for path in self.counts:
            value = _whole_numbers(value, path.split("."))
        return value

    def __repr__(self) -> str:
        return f"RFunction({self.label})"


def r_function(script: str, name: str, counts: Sequence[str] = (),
               input_errors: bool = False) -> RFunction:
    """Python callable for the R function ``name`` of ``rscripts/<script>.R``.

    ``counts``: the whole-number entries of its result (``"n"``, ``"groups.n"``), returned
    as ``int``; ``input_errors``: its R errors are :class:`~studyrunner.errors.InputError`.
    """
    return RFunction(script, name, counts, input_errors)


def _whole_numbers(value: Any, path: list[str]) -> Any:
    """``value`` with the whole numbers at ``path`` as int.

    ``path`` is a sequence of list entries ending, optionally, in a data frame column; the
    entry ``*`` stands for every entry of a list. A missing entry, ``None``, NA and a number
    that is not whole are left as they are (a data frame column with NA becomes an object
    column of int and None).
    """
    if value is None or not path:
        return _as_int(value)
    key, rest = path[0], path[1:]
    if isinstance(value, pd.DataFrame):
        if rest or key not in value.columns:
            return value
        column = value[key]
        whole = [None if _is_missing(v) else _as_int(v) for v in column.tolist()]
        if not all(v is None or type(v) is int for v in whole):
            return value
        value = value.copy()
        value[key] = pd.Series(whole, index=value.index,
                               dtype=object if None in whole else np.int64)
        return value
    if isinstance(value, dict):
        for name in (value if key == "*" else [key] if key in value else []):
            value[name] = _whole_numbers(value[name], rest)
    return value


def _as_int(value: Any) -> Any:
    """A whole float (R hands counts back as doubles: 12.0) as int; anything else as is."""
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        return int(value)
    return value


def r_versions(packages: Sequence[str]) -> dict[str, Any]:
    """R's version and the installed version of each package.

    Returns ``{"r": "4.2.2", "r_version_string": "R version 4.2.2 ...",
    "packages": {name: "3.5.3" or None when not installed}}``.
    """
    with _in_r() as session:
        result = session.call("versions", session.helpers.rx2("versions"),
                              [list(packages)], {})
        versions = to_python(result)
    packages_found = versions["packages"] or {}
    return {"r": versions["r"], "r_version_string": versions["r_version_string"],
            "packages": {name: packages_found.get(name) for name in packages}}


def r_package_available(name: str) -> bool:
    """Whether the R package ``name`` is installed and its namespace loads."""
    with _in_r() as session:
        return bool(to_python(session.call("requireNamespace",
                                           session.helpers.rx2("available"), [name], {})))


# --------------------------------------------------------------------------- Python -> R


def to_r(value: Any) -> Any:
    """Convert a Python value to an R object (see the module docstring for the rules)."""
    from rpy2.robjects.robject import RObjectMixin

    ro = _r().ro
    if value is None:
        return ro.NULL
    if isinstance(value, RObjectMixin):
        return value
    if isinstance(value, pd.DataFrame):
        return _dataframe_to_r(value)
    if isinstance(value, (str, bool, int, float, np.generic)):
        return _atomic_to_r([value])
    if isinstance(value, Mapping):
        return _mapping_to_r(value)
    if isinstance(value, (pd.Series, pd.Index, np.ndarray, Sequence)):
        return _atomic_to_r(list(value.tolist() if hasattr(value, "tolist") else value))
    raise TypeError(f"cannot convert {type(value).__name__} to an R object")


def _dataframe_to_r(frame: pd.DataFrame) -> Any:
    from rpy2.robjects import pandas2ri
    from rpy2.robjects.conversion import localconverter

    ro = _r().ro
    bad_names = [c for c in frame.columns if not isinstance(c, str)]
    if bad_names:
        raise TypeError(f"data frame column names must be strings, got {bad_names[:5]}")
    if not frame.index.is_unique:
        duplicated = frame.index[frame.index.duplicated()].unique().tolist()[:5]
        raise ValueError(f"data frame row index must be unique (it identifies the rows in "
                         f"error messages); duplicated: {duplicated}")
    with localconverter(ro.default_converter + pandas2ri.converter):
        return ro.conversion.get_conversion().py2rpy(frame)


def _mapping_to_r(mapping: Mapping[Any, Any]) -> Any:
    ro = _r().ro
    names = [str(k) for k in mapping]
    values = list(mapping.values())
    if values and all(_is_number(v) for v in values):
        vector = ro.FloatVector([float(v) for v in values])
        vector.names = ro.StrVector(names)
        return vector
    return ro.r["list"](**{name: to_r(v) for name, v in zip(names, values, strict=True)})


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_))


def _atomic_to_r(values: list[Any]) -> Any:
    """An atomic R vector from a flat list of scalars (None -> NA); empty -> logical(0)."""
    ro = _r().ro
    present = [v for v in values if v is not None and not (isinstance(v, float) and
                                                           math.isnan(v))]
    if all(isinstance(v, (bool, np.bool_)) for v in present):
        return ro.BoolVector([ro.NA_Logical if v is None else bool(v) for v in values])
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))
           for v in present) and len(present) == len(values):
        return ro.IntVector([int(v) for v in values])
    if all(_is_number(v) for v in present):
        return ro.FloatVector([ro.NA_Real if v is None else float(v) for v in values])
    if all(isinstance(v, str) for v in present):
        return ro.StrVector([ro.NA_Character if v is None else v for v in values])
    if all(isinstance(v, (str, bool, int, float, np.generic, type(None))) for v in values):
        raise TypeError(f"cannot convert a sequence mixing types to one R vector: {values[:5]}")
    return ro.r["list"](*[to_r(v) for v in values])


# --------------------------------------------------------------------------- R -> Python


def to_python(robj: Any) -> Any:
    """Convert an R object (as returned by rpy2's default converter) to plain Python.

    Nested named lists become nested dicts; see the module docstring for all the rules.
    """
    from rpy2 import rinterface
    from rpy2.robjects import vectors

    if robj is rinterface.NULL or isinstance(robj, rinterface.NULLType):
        return None
    if isinstance(robj, vectors.DataFrame):
        return _dataframe_to_pandas(robj)
    if isinstance(robj, vectors.ListVector):
        names = _names(robj)
        items = [to_python(item) for item in robj]
        if names is None:
            return items
        return dict(zip(names, items, strict=True))
    if isinstance(robj, (vectors.FloatVector, vectors.IntVector, vectors.BoolVector,
                         vectors.StrVector)):
        return _atomic_to_python(robj)
    raise TypeError(f"cannot convert R object of class {list(robj.rclass)} to Python")


def _names(robj: Any) -> list[str] | None:
    from rpy2 import rinterface

    names = robj.names
    if names is rinterface.NULL or isinstance(names, rinterface.NULLType):
        return None
    return [str(n) for n in names]


def _atomic_to_python(robj: Any) -> Any:
    values = _column_values(robj)
    plain = [None if _is_missing(v) else v for v in
             (values.tolist() if isinstance(values, np.ndarray) else values)]
    if "dim" in list(robj.list_attrs()):
        dims = tuple(int(d) for d in robj.do_slot("dim"))
        if len(dims) == 2:
            return np.array(plain, dtype=object).reshape(dims, order="F").tolist()
    names = _names(robj)
    if names is not None:
        return dict(zip(names, plain, strict=True))
    if len(plain) == 1:
        return plain[0]
    return plain


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _column_values(robj: Any) -> np.ndarray | list[Any]:
    """Values of an atomic R vector, converted per vector (no per-cell R round trips).

    Numbers come back as a numpy array (integers with NA as float with NaN), logicals as a
    bool array (object array with None when NA is present), text and factors as a list of
    str with None for NA.
    """
    from rpy2.robjects import vectors

    ro = _r().ro
    if isinstance(robj, vectors.FactorVector):
        levels = np.array([*robj.levels, None], dtype=object)
        codes = np.asarray(robj)
        return levels[np.where(codes == _NA_INTEGER, len(levels) - 1, codes - 1)].tolist()
    if isinstance(robj, vectors.BoolVector):
        raw = np.asarray(robj)
        missing = raw == _NA_INTEGER
        if missing.any():
            flags = raw.astype(bool).astype(object)
            flags[missing] = None
            return flags
        return raw.astype(bool)
    if isinstance(robj, vectors.IntVector):
        raw = np.asarray(robj)
        missing = raw == _NA_INTEGER
        if missing.any():
            return np.where(missing, np.nan, raw.astype(float))
        return raw.astype(np.int64)
    if isinstance(robj, vectors.FloatVector):
        return np.array(robj, dtype=float)
    if isinstance(robj, vectors.StrVector):
        return [None if s is ro.NA_Character else str(s) for s in robj]
    raise TypeError(f"cannot convert R vector of class {list(robj.rclass)} to Python")


def _dataframe_to_pandas(rdf: Any) -> pd.DataFrame:
    """A pandas DataFrame from an R data.frame, column by column.

    Automatic row names (1..n) give a RangeIndex, other row names the index.
    """
    columns = {str(name): _column_values(column) for name, column in rdf.items()}
    frame = pd.DataFrame(columns)
    row_names = [str(r) for r in rdf.rownames]
    if row_names != [str(i) for i in range(1, len(row_names) + 1)]:
        frame.index = pd.Index(row_names)
    return frame
