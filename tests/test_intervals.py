"""Interval cut-offs and labels of the nsclc_ici study's survival network (hand-made tables)."""

import numpy as np
import pytest

from studyrunner.deep.intervals import interval_cutoffs, interval_labels
from studyrunner.errors import InputError


def test_seed_os_cutoffs_recovered_from_event_times_only():
    # 7 event times: linear (R type 7) tertiles sit at sorted positions (7-1)/3 = 2 and 4
    event_times = [600, 20, 282, 135, 80, 350, 200]
    censored_times = [5, 1000, 1100, 1200]  # would move the tertiles if they were used
    times = event_times + censored_times
    events = [1] * 7 + [0] * 4
    assert interval_cutoffs(times, events) == (135.0, 282.0)


def test_seed_pfs_cutoffs_recovered():
    times = [10, 98, 150, 213, 400, 30, 60]
    events = [1, 1, 1, 1, 1, 0, 0]
    # 5 event times 10, 98, 150, 213, 400: positions 4/3 and 8/3 -> interpolate
    c1 = 98 + (4 / 3 - 1) * (150 - 98)
    c2 = 150 + (8 / 3 - 2) * (213 - 150)
    assert interval_cutoffs(times, events) == pytest.approx((c1, c2), abs=1e-12)
    # 7 event times built to give exactly the paper's PFS cut-offs (positions 2 and 4)
    assert interval_cutoffs([5, 60, 98, 150, 213, 700, 800], [1] * 7) == (98.0, 213.0)


def test_interpolated_tertiles_hand_computed():
    # 10,20,30,40,50: positions 4/3 -> 23.333..., 8/3 -> 36.666...
    assert interval_cutoffs([10, 20, 30, 40, 50], [1] * 5) == pytest.approx((70 / 3, 110 / 3))


CUTS = (135.0, 282.0)
# time, event, targets, known
TABLE = [
    (0.0, 1, [1, 0, 0], [1, 1, 1]),
    (100.0, 1, [1, 0, 0], [1, 1, 1]),
    (134.9, 1, [1, 0, 0], [1, 1, 1]),
    (135.0, 1, [0, 1, 0], [1, 1, 1]),  # event exactly at c1 -> later interval
    (281.0, 1, [0, 1, 0], [1, 1, 1]),
    (282.0, 1, [0, 0, 1], [1, 1, 1]),  # event exactly at c2 -> last interval
    (900.0, 1, [0, 0, 1], [1, 1, 1]),
    (0.0, 0, [0, 0, 0], [0, 0, 0]),
    (100.0, 0, [0, 0, 0], [0, 0, 0]),  # censored in interval 1: nothing known
    (134.9, 0, [0, 0, 0], [0, 0, 0]),
    (135.0, 0, [0, 0, 0], [1, 0, 0]),  # event-free through c1: interval 1 known negative
    (200.0, 0, [0, 0, 0], [1, 0, 0]),
    (281.9, 0, [0, 0, 0], [1, 0, 0]),
    (282.0, 0, [0, 0, 0], [1, 1, 0]),
    (900.0, 0, [0, 0, 0], [1, 1, 0]),  # the last interval is never known when censored
]


def test_interval_labels_hand_made_table():
    time = [r[0] for r in TABLE]
    event = [r[1] for r in TABLE]
    targets, known = interval_labels(time, event, CUTS)
    assert targets.dtype == np.float64
    assert known.dtype == bool
    np.testing.assert_array_equal(targets, np.array([r[2] for r in TABLE], dtype=float))
    np.testing.assert_array_equal(known, np.array([r[3] for r in TABLE], dtype=bool))


def test_bad_input_names_the_row():
    with pytest.raises(InputError, match="events: row 1"):
        interval_labels([10, 20], [1, 2], CUTS)
    with pytest.raises(InputError, match="times: row 0"):
        interval_cutoffs([-1, 20, 30], [1, 1, 1])
    with pytest.raises(InputError, match="strictly increasing"):
        interval_labels([10], [1], (282, 135))
    with pytest.raises(InputError, match="1 patients with the event"):
        interval_cutoffs([10, 20], [1, 0])
    with pytest.raises(InputError, match="times has 2 values but events has 3"):
        interval_cutoffs([10, 20], [1, 0, 1])
