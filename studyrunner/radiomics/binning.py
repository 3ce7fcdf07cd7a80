"""PyRadiomics' grey-level bin edges from the ROI's minimum and maximum only, in a scope.

PyRadiomics 3.0.1 (van Griethuysen et al., Cancer Res 2017;77:e104-e107) discretises the
ROI in every first-order and texture feature class: each class's constructor calls
``_applyBinning`` -> ``imageoperations.binImage`` -> ``imageoperations.getBinEdges``, the
only caller of ``getBinEdges`` in the package, which ``binImage`` looks up as a global of
``radiomics.imageoperations`` at each call. The edges depend on the ROI values only
through their minimum and maximum (fixed bin width: ``arange`` from the floored minimum
past the maximum; fixed bin count: ``numpy.histogram``'s edges, which span min..max), but
PyRadiomics finds them with Python's builtin ``min``/``max``, a loop over every voxel:
about a tenth of the extraction time, repeated for every feature class and filtered image.

:func:`bin_edges_from_extremes` is a context manager under which ``getBinEdges`` is given
the two-element array (min, max), found by numpy (exact, nothing is rounded), so that
PyRadiomics' own code computes the same edges. Only ``binImage``'s module global can be
changed to reach it, so the scope is kept as narrow as that allows:

* The replacement is a dispatcher that takes the fast path only for calls made inside the
  context in the same thread (a :class:`contextvars.ContextVar`); any other call, in
  another thread or outside the context, runs the function it replaced, unchanged.
* It is installed by the first context entered and the function it replaced is put back
  when the last one exits (a count under a lock), also when the body raises.
* It is entered only around ``computeFeatures`` (:mod:`studyrunner.radiomics.execution`),
  never around loading, filtering or shape, which do not bin.
* With the process pool (:mod:`studyrunner.radiomics.workers`) each worker is a spawned
  process with its own fresh ``radiomics`` module, which enters and exits the context
  itself; the parent is never inside it while it submits cases, and a spawned child does
  not inherit the parent's module state anyway.

A function installed over ``getBinEdges`` by someone else while a context is open is
replaced when the last context exits (the tests' ``monkeypatch`` is undone after a test,
outside any context, so it is unaffected).
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from radiomics import imageoperations

_inside: contextvars.ContextVar[bool] = contextvars.ContextVar("bin_edges_from_extremes", default=False)
_lock = threading.Lock()
_open_contexts = 0
_replaced: Callable[..., Any] | None = None


@contextlib.contextmanager
def bin_edges_from_extremes() -> Iterator[None]:
    """Within this context (this thread), PyRadiomics' ``getBinEdges`` sees only the
    ROI's (min, max); an empty ROI or a non-finite extreme goes to it unchanged."""
    _install()
    token = _inside.set(True)
    try:
        yield
    finally:
        _inside.reset(token)
        _uninstall()


def _install() -> None:
    global _open_contexts, _replaced
    with _lock:
        if _open_contexts == 0:
            _replaced = imageoperations.getBinEdges
            imageoperations.getBinEdges = _dispatch
        _open_contexts += 1


def _uninstall() -> None:
    global _open_contexts
    with _lock:
        _open_contexts -= 1
        if _open_contexts == 0:
            imageoperations.getBinEdges = _replaced


def _dispatch(parameterValues, **kwargs):  # PyRadiomics' argument name
    # _replaced is kept after the last exit: a thread that looked the dispatcher up just
    # before it was uninstalled still reaches the function it replaced.
    original = _replaced
    assert original is not None  # _install sets it before installing this dispatcher; never unset
    if not _inside.get():
        return original(parameterValues, **kwargs)
    values = np.asarray(parameterValues)
    if values.size:
        low, high = values.min(), values.max()
        if np.isfinite(low) and np.isfinite(high):
            return original(np.array([low, high], dtype=values.dtype), **kwargs)
    return original(parameterValues, **kwargs)
