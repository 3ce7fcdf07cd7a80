"""Tests for studyrunner.cohort.split: exact sizes, proportional strata, determinism, sites."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from studyrunner.cohort.split import SplitError, controlled_rounding, partition_counts, split_cohort

NSCLC_ICI_COUNTS = {"modelling": 164, "validation": 24, "test": 48}


def _cohort(n: int = 236, seed: int = 7) -> pd.DataFrame:
    """Synthetic cohort: ~40% events, a histology with three levels and some blanks."""
    rng = np.random.default_rng(seed)
    histology = rng.choice(["adeno", "squamous", "other"], size=n, p=[0.5, 0.35, 0.15]).astype(object)
    histology[rng.random(n) < 0.08] = None
    return pd.DataFrame({"patient_id": [f"P{i:03d}" for i in range(1, n + 1)],
                         "os_event": (rng.random(n) < 0.4).astype(int),
                         "histology": histology,
                         "site": rng.choice(["A", "B", "C"], size=n)})


def test_partition_counts_by_largest_remainder() -> None:
    # 236 * (0.7, 0.1, 0.2) = 165.2, 23.6, 47.2 -> floors 165, 23, 47 (235); the one left
    # goes to the largest remainder, 0.6 (validation).
    assert partition_counts({"modelling": 0.7, "validation": 0.1, "test": 0.2}, 236) == \
        {"modelling": 165, "validation": 24, "test": 47}


def test_controlled_rounding_hand_case() -> None:
    # quotas: 5*4/7 = 2.857, 5*3/7 = 2.143, 2*4/7 = 1.143, 2*3/7 = 0.857; floors [[2,2],[1,0]];
    # one round-up per row and column, to the largest remainders (6/7): cells (0,0) and (1,1).
    assert controlled_rounding([5, 2], [4, 3]).tolist() == [[3, 2], [1, 1]]


def test_controlled_rounding_when_largest_remainder_alone_gets_stuck() -> None:
    # All nine quotas are 2*2/6 = 0.667 with equal remainders; taken in cell order, largest
    # remainder fills (0,0), (0,1), (1,0), (1,1) and row 2 can then reach only column 2.
    allocation = controlled_rounding([2, 2, 2], [2, 2, 2], np.zeros((3, 3)))
    assert allocation.sum(axis=1).tolist() == [2, 2, 2]
    assert allocation.sum(axis=0).tolist() == [2, 2, 2]
    assert set(np.unique(allocation)) <= {0, 1}


def _partitions(cohort: pd.DataFrame, stratify_on: list[str]) -> pd.DataFrame:
    split = split_cohort(cohort, "patient_id", "stratified", counts=NSCLC_ICI_COUNTS,
                         stratify_on=stratify_on, seed=20220415)
    return cohort.assign(partition=cohort["patient_id"].map(split))


def test_stratified_split_on_event_balances_event_rates() -> None:
    cohort = _partitions(_cohort(), ["os_event"])
    assert cohort["partition"].value_counts().to_dict() == NSCLC_ICI_COUNTS
    n, events = len(cohort), int(cohort["os_event"].sum())
    for name, size in NSCLC_ICI_COUNTS.items():
        in_partition = cohort[cohort["partition"] == name]
        # One event stratum, its share rounded from the quota: events within 1 of
        # events * size / n, so the partition's event rate is within 1/size of the overall.
        assert abs(int(in_partition["os_event"].sum()) - events * size / n) < 1
        assert abs(in_partition["os_event"].mean() - events / n) < 1 / size


def test_stratified_split_gives_each_stratum_its_rounded_quota() -> None:
    cohort = _partitions(_cohort(), ["os_event", "histology"])
    assert cohort["partition"].value_counts().to_dict() == NSCLC_ICI_COUNTS
    n = len(cohort)
    strata = cohort.fillna({"histology": "missing"}).groupby(["os_event", "histology"])
    assert strata.ngroups == 8  # 2 event levels x (3 histologies + missing)
    for _, members in strata:
        for name, size in NSCLC_ICI_COUNTS.items():
            quota = len(members) * size / n
            assert int(np.floor(quota)) <= int((members["partition"] == name).sum()) <= int(np.ceil(quota))


def test_stratified_split_is_deterministic_and_independent_of_row_order() -> None:
    cohort = _cohort()
    arguments = {"counts": NSCLC_ICI_COUNTS, "stratify_on": ["os_event"], "seed": 11}
    first = split_cohort(cohort, "patient_id", "stratified", **arguments)
    shuffled = cohort.sample(frac=1.0, random_state=3)
    assert split_cohort(shuffled, "patient_id", "stratified", **arguments) == first
    other_seed = split_cohort(cohort, "patient_id", "stratified", **{**arguments, "seed": 12})
    assert other_seed != first
    assert list(first) == cohort["patient_id"].tolist()


def test_tiny_strata_still_meet_the_counts() -> None:
    cohort = pd.DataFrame({"patient_id": [f"P{i}" for i in range(10)],
                           "group": ["a"] * 6 + ["b"] * 3 + ["c"]})
    split = split_cohort(cohort, "patient_id", "stratified", counts={"train": 7, "test": 3},
                         stratify_on=["group"], seed=1)
    assert pd.Series(split).value_counts().to_dict() == {"train": 7, "test": 3}
    # stratum a: quotas 4.2 / 1.8 -> 4 or 5 in train
    train_a = sum(split[f"P{i}"] == "train" for i in range(6))
    assert train_a in (4, 5)


def test_counts_that_do_not_sum_to_the_cohort_are_refused() -> None:
    with pytest.raises(SplitError, match=r"sum to 230, but the cohort has 236 patients"):
        split_cohort(_cohort(), "patient_id", "stratified",
                     counts={"modelling": 164, "validation": 18, "test": 48}, seed=1)


def test_fractions_must_sum_to_one() -> None:
    with pytest.raises(SplitError, match=r"sum to 0\.9, not 1"):
        split_cohort(_cohort(), "patient_id", "stratified", fractions={"train": 0.6, "test": 0.3}, seed=1)


def test_site_split_follows_the_site_map() -> None:
    cohort = _cohort(n=60)
    split = split_cohort(cohort, "patient_id", "site", site_column="site",
                         site_map={"A": "development", "B": "development", "C": "external"}, seed=1)
    expected_external = int((cohort["site"] == "C").sum())
    assert sum(partition == "external" for partition in split.values()) == expected_external
    assert all(split[patient] == "development"
               for patient, site in zip(cohort["patient_id"], cohort["site"], strict=True) if site in ("A", "B"))


def test_site_split_names_unmapped_sites() -> None:
    cohort = _cohort(n=60)
    n_c = int((cohort["site"] == "C").sum())
    with pytest.raises(SplitError, match=rf"'site' with no partition.*{{'C': {n_c}}}"):
        split_cohort(cohort, "patient_id", "site", site_column="site",
                     site_map={"A": "development", "B": "development"}, seed=1)
