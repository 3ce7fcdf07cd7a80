"""Time intervals of the survival network's risk vector and each patient's labels.

The nsclc_ici study (Transl Lung Cancer Res 2022;11(4):670-685, Methods, "Development and
evaluation of OSRS and PFSRS"): the network outputs a risk vector of 3 scores, "each
score related to whether the patient had an endpoint in the time interval"; the cut-offs
are "the points of trisection in the time dimension of the sample with endpoint in the
training cohort" (OS 135 and 282 days, PFS 98 and 213 days).

Conventions used here (numpy only, no torch):

* Cut-offs: the 1/3 and 2/3 quantiles of the training EVENT times (censored times are
  not used), ``numpy.quantile(..., method="linear")``, which is R's ``quantile(type = 7)``.
* Intervals are half-open: ``[0, c1)``, ``[c1, c2)``, ``[c2, inf)``. An event exactly at a
  cut-off belongs to the LATER interval (event at c1 -> interval 2).
* Patient with the event at time t: the interval containing t is positive (target 1),
  all others negative (target 0); all entries known.
* Censored patient at time t (event-free through t, so its event time T > t): an interval
  whose upper end u satisfies ``u <= t`` is a known negative (T > t >= u); the interval
  containing t and every later one are unknown (``known`` False, target 0 as filler).
  Censoring exactly at c1 therefore makes interval 1 known negative and leaves 2 and 3
  unknown; the last interval never ends, so it is never known for a censored patient.
"""

from __future__ import annotations

import numpy as np

from studyrunner.errors import InputError


def _as_time_event(times, events) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(times, dtype=float).reshape(-1)
    e_raw = np.asarray(events).reshape(-1)
    if t.shape != e_raw.shape:
        raise InputError(f"times has {t.size} values but events has {e_raw.size}")
    bad = np.flatnonzero(~np.isfinite(t) | (t < 0))
    if bad.size:
        raise InputError(f"times: row {int(bad[0])} is {t[bad[0]]!r}; need a finite value >= 0")
    e = e_raw.astype(float)
    bad = np.flatnonzero(~np.isin(e, (0.0, 1.0)))
    if bad.size:
        raise InputError(f"events: row {int(bad[0])} is {e_raw[bad[0]]!r}; need 0 (censored) or 1 (event)")
    return t, e.astype(bool)


def interval_cutoffs(times, events, n_intervals: int = 3) -> tuple[float, ...]:
    """Cut-offs splitting the training event times into ``n_intervals`` equal-count parts.

    Returns the k/n quantiles (k = 1..n-1) of ``times[events == 1]`` by numpy's default
    ``"linear"`` rule (R ``quantile(type = 7)``): for n = 3 the tertiles ``(c1, c2)``.
    """
    if n_intervals < 2:
        raise InputError(f"n_intervals is {n_intervals}; need at least 2")
    t, e = _as_time_event(times, events)
    event_times = t[e]
    if event_times.size < n_intervals - 1:
        raise InputError(
            f"events: {event_times.size} patients with the event; need at least "
            f"{n_intervals - 1} to place {n_intervals - 1} cut-offs"
        )
    probs = np.arange(1, n_intervals) / n_intervals
    cuts = np.quantile(event_times, probs, method="linear")
    return tuple(float(c) for c in cuts)


def interval_labels(time, event, cutoffs) -> tuple[np.ndarray, np.ndarray]:
    """Interval targets and known-mask for each patient (see the module docstring).

    ``time``, ``event``: arrays of n patients; ``cutoffs``: strictly increasing
    ``(c1, ..., c_{K-1})`` for K intervals. Returns ``(targets, known)``, numpy arrays of
    shape (n, K): ``targets`` float64 (1 = the interval holding the event time, else 0),
    ``known`` bool. Unknown entries have target 0 and carry no label.
    """
    t, e = _as_time_event(time, event)
    c = np.asarray(cutoffs, dtype=float).reshape(-1)
    if c.size < 1 or not np.all(np.isfinite(c)) or np.any(np.diff(c) <= 0):
        raise InputError(f"cutoffs {c.tolist()!r}: need finite, strictly increasing values")
    k = c.size + 1
    # interval index of each time, half-open [c_{k-1}, c_k): a time equal to c_k goes right
    idx = np.searchsorted(c, t, side="right")
    upper = np.append(c, np.inf)  # upper end of each interval
    targets = np.zeros((t.size, k), dtype=float)
    targets[np.flatnonzero(e), idx[e]] = 1.0
    ended = upper[None, :] <= t[:, None]  # interval over by the patient's time
    known = np.where(e[:, None], True, ended)
    return targets, known
