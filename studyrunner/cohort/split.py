"""Allocate patients to partitions (e.g. modelling / validation / test): stratified or by site.

Stratified randomisation meets the partition sizes exactly and keeps every stratum's
allocation proportional: the number of patients of stratum s put in partition p is the
quota n_s * c_p / n rounded down or up (controlled rounding: Cox & Ernst, "Controlled
rounding", INFOR 1982;20:423-432; such a rounding always exists, Bacharach, Management
Science 1966;12:732-742). The cells to round up are taken by largest remainder
(Hamilton's method), with augmenting paths where that alone cannot meet the partition
sizes. Which patients of a stratum fill which places is a seeded random permutation of the
stratum's patients sorted by id, so the split does not depend on the table's row order.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
import pandas as pd

from studyrunner.errors import InputError

FRACTION_TOLERANCE = 1e-6
MAX_LISTED = 20


class SplitError(InputError):
    """The split cannot be made as asked; the message says why (column, sizes, sites)."""


def split_cohort(df: pd.DataFrame, id_column: str, method: str,
                 counts: dict[str, int] | None = None, fractions: dict[str, float] | None = None,
                 stratify_on: list[str] | None = None, site_column: str | None = None,
                 site_map: dict[Any, str] | None = None, seed: int = 0) -> dict[str, str]:
    """Patient id -> partition name, in table order.

    ``method="stratified"``: partitions in the order of ``counts`` (which must sum to the
    number of patients) or ``fractions`` (which must sum to 1; turned into counts by largest
    remainder); strata are the combinations of the ``stratify_on`` columns, a missing value
    being a level of its own. ``method="site"``: each patient goes to ``site_map[site]``.
    """
    ids = _patient_ids(df, id_column)
    if method == "stratified":
        if (counts is None) == (fractions is None):
            raise SplitError("a stratified split needs exactly one of counts or fractions")
        totals = dict(counts) if counts is not None else partition_counts(fractions or {}, len(ids))
        partitions = _stratified(df, ids, totals, list(stratify_on or []), seed)
    elif method == "site":
        if counts is not None or fractions is not None:
            raise SplitError("a site split takes its partitions from the site map; "
                             "counts and fractions do not apply")
        partitions = _by_site(df, ids, site_column, site_map)
    else:
        raise SplitError(f"unknown split method {method!r}; use 'stratified' or 'site'")
    return dict(zip(ids, partitions, strict=True))


def _patient_ids(df: pd.DataFrame, id_column: str) -> list[str]:
    if id_column not in df.columns:
        raise SplitError(f"no patient id column '{id_column}'; the columns are {list(df.columns)}")
    ids = df[id_column]
    if ids.isna().any():
        raise SplitError(f"column '{id_column}' has {int(ids.isna().sum())} empty patient id(s)")
    text = ids.astype(str).tolist()
    duplicated = sorted(set(ids[ids.astype(str).duplicated()].astype(str)))
    if duplicated:
        raise SplitError(f"patient ids repeat in column '{id_column}': {duplicated[:MAX_LISTED]}")
    return text


def partition_counts(fractions: dict[str, float], n: int) -> dict[str, int]:
    """Partition sizes from fractions by largest remainder, ties to the earlier partition.

    E.g. 0.7/0.1/0.2 of 236 -> quotas 165.2/23.6/47.2 -> 165/24/47.
    """
    if any(value < 0 for value in fractions.values()):
        raise SplitError(f"split fractions cannot be negative: {fractions}")
    total = sum(fractions.values())
    if abs(total - 1.0) > FRACTION_TOLERANCE:
        raise SplitError(f"split fractions sum to {total:g}, not 1: {fractions}")
    quotas = {name: n * value / total for name, value in fractions.items()}
    sizes = {name: int(np.floor(quota)) for name, quota in quotas.items()}
    by_remainder = sorted(quotas, key=lambda name: -(quotas[name] - sizes[name]))
    for name in by_remainder[:n - sum(sizes.values())]:
        sizes[name] += 1
    return sizes


def _stratified(df: pd.DataFrame, ids: list[str], totals: dict[str, int],
                stratify_on: list[str], seed: int) -> list[str]:
    n = len(ids)
    if any(size < 0 for size in totals.values()):
        raise SplitError(f"partition sizes cannot be negative: {totals}")
    if sum(totals.values()) != n:
        raise SplitError(f"partition counts {totals} sum to {sum(totals.values())}, "
                         f"but the cohort has {n} patients")
    missing = [column for column in stratify_on if column not in df.columns]
    if missing:
        raise SplitError(f"no stratification column(s) {missing}; the columns are {list(df.columns)}")
    strata = _strata(df, ids, stratify_on)
    rng = np.random.default_rng(seed)
    tie_break = rng.random((len(strata), len(totals)))
    allocation = controlled_rounding([len(members) for members in strata.values()],
                                     list(totals.values()), tie_break)
    names = list(totals)
    partition_of: dict[str, str] = {}
    for members, row in zip(strata.values(), allocation, strict=True):
        shuffled = [members[i] for i in rng.permutation(len(members))]
        labels = [name for name, count in zip(names, row, strict=True) for _ in range(count)]
        partition_of.update(zip(shuffled, labels, strict=True))
    return [partition_of[patient] for patient in ids]


def _strata(df: pd.DataFrame, ids: list[str], stratify_on: list[str]) -> dict[tuple, list[str]]:
    """Stratum key -> patient ids sorted; strata in sorted key order (missing after values)."""
    keys = [tuple((bool(pd.isna(value)), "" if pd.isna(value) else str(value)) for value in row)
            for row in df[stratify_on].itertuples(index=False, name=None)]
    strata: dict[tuple, list[str]] = {}
    for key, patient in sorted(zip(keys, ids, strict=True)):
        strata.setdefault(key, []).append(patient)
    return strata


def controlled_rounding(row_sizes: list[int], column_sizes: list[int],
                        tie_break: np.ndarray | None = None) -> np.ndarray:
    """Integer matrix with the given row and column sums, each cell the floor or ceiling of
    its proportional quota ``row_size * column_size / n`` (Cox & Ernst 1982).

    Cells are rounded up by largest remainder (``tie_break``, same shape, orders equal
    remainders; lower first); where that would miss a row or column sum, augmenting paths
    move round-ups to cells that keep every sum exact.
    """
    rows = np.asarray(row_sizes, dtype=np.int64)
    columns = np.asarray(column_sizes, dtype=np.int64)
    n = int(rows.sum())
    if n != int(columns.sum()):
        raise SplitError(f"row sizes sum to {n} but column sizes to {int(columns.sum())}")
    if n == 0:
        return np.zeros((len(rows), len(columns)), dtype=np.int64)
    products = np.outer(rows, columns)
    floors, remainders = products // n, products % n
    row_need = rows - floors.sum(axis=1)
    column_need = columns - floors.sum(axis=0)
    ties = np.zeros(products.shape) if tie_break is None else np.asarray(tie_break)
    up = np.zeros(products.shape, dtype=bool)
    candidates = sorted(zip(*np.nonzero(remainders), strict=True), key=lambda cell: (-remainders[cell], ties[cell]))
    for r, c in candidates:
        if row_need[r] > 0 and column_need[c] > 0:
            up[r, c] = True
            row_need[r] -= 1
            column_need[c] -= 1
    for r in np.nonzero(row_need)[0].tolist():
        for _ in range(int(row_need[r])):
            _augment(r, up, remainders > 0, column_need)
    return floors + up


def _augment(start_row: int, up: np.ndarray, can_round: np.ndarray, column_need: np.ndarray) -> None:
    """One more round-up in ``start_row``: breadth-first search for an alternating path
    row -> (new round-up) column -> (moved round-up) row ... ending at a column in need.

    The fractional remainders are a feasible flow, so such a path exists while a row is in
    need (max-flow integrality)."""
    parent: dict[tuple[str, int], tuple[str, int] | None] = {("row", start_row): None}
    queue = deque([start_row])
    while queue:
        r = queue.popleft()
        for c in np.nonzero(can_round[r] & ~up[r])[0].tolist():
            if ("column", c) in parent:
                continue
            parent[("column", c)] = ("row", r)
            if column_need[c] > 0:
                column_need[c] -= 1
                _flip_path(("column", c), parent, up)
                return
            for r_next in np.nonzero(up[:, c])[0].tolist():
                if ("row", r_next) not in parent:
                    parent[("row", r_next)] = ("column", c)
                    queue.append(r_next)
    raise AssertionError("controlled rounding: no augmenting path (row and column sums disagree)")


def _flip_path(node: tuple[str, int], parent: dict, up: np.ndarray) -> None:
    """Walk the path back to its start, adding row->column round-ups and removing column->row ones."""
    while parent[node] is not None:
        previous = parent[node]
        if node[0] == "column":
            up[previous[1], node[1]] = True
        else:
            up[node[1], previous[1]] = False
        node = previous


def _by_site(df: pd.DataFrame, ids: list[str], site_column: str | None,
             site_map: dict[Any, str] | None) -> list[str]:
    if not site_column or not site_map:
        raise SplitError("a site split needs a site column and a site -> partition map")
    if site_column not in df.columns:
        raise SplitError(f"no site column '{site_column}'; the columns are {list(df.columns)}")
    sites = df[site_column]
    no_site = [patient for patient, site in zip(ids, sites, strict=True) if pd.isna(site)]
    if no_site:
        raise SplitError(f"column '{site_column}' is empty for {len(no_site)} patient(s): "
                         f"{no_site[:MAX_LISTED]}")
    partition_of_site = {str(site).strip(): partition for site, partition in site_map.items()}
    labels = [str(site).strip() for site in sites]
    unmapped = pd.Series([label for label in labels if label not in partition_of_site]).value_counts()
    if len(unmapped):
        raise SplitError(f"sites in column '{site_column}' with no partition in the site map "
                         f"(patients per site): {unmapped.to_dict()}; mapped sites are {list(partition_of_site)}")
    return [partition_of_site[label] for label in labels]
