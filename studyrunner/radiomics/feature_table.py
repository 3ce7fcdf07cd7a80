"""Start a study from an existing feature table instead of images.

The table has the protocol's id column and one numeric column per feature (e.g. exported
from another PyRadiomics run). It is checked cell by cell: a value that is not a number is
an error naming the file, the line as the user sees it (header = line 1) and the column.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from studyrunner.errors import InputError
from studyrunner.run_folder import write_json

MAX_CELLS_LISTED = 10


def read_feature_table(path: Path, id_column: str) -> pd.DataFrame:
    """A feature table with a ``patient_id`` column first and float feature columns."""
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    if id_column not in table.columns:
        raise InputError(f"{path}: no id column {id_column!r} (columns: {list(table.columns)[:10]} ...)")
    ids = table[id_column].str.strip()
    duplicated = ids[ids.duplicated()]
    if len(duplicated):
        raise InputError(f"{path}:{int(duplicated.index[0]) + 2}: column {id_column}: "
                         f"patient id {duplicated.iloc[0]!r} appears twice")
    features = table.drop(columns=[id_column])
    numeric = features.apply(lambda column: pd.to_numeric(column.replace("", None), errors="coerce"))
    bad = features.ne("") & numeric.isna()
    if bad.to_numpy().any():
        rows, cols = bad.to_numpy().nonzero()
        cells = [f"line {r + 2}, column {features.columns[c]!r}: {features.iat[r, c]!r} is not a number"
                 for r, c in list(zip(rows, cols, strict=True))[:MAX_CELLS_LISTED]]
        raise InputError(f"{path}: {len(rows)} cell(s) must be numbers:\n  " + "\n  ".join(cells))
    numeric.insert(0, "patient_id", ids)
    return numeric


def import_feature_tables(paths: dict[str, Path], id_column: str, patient_ids: list[str], stage_dir: Path) -> None:
    """Write ``features.csv`` (and ``features_<reader>.csv``) for the cohort's patients.

    ``paths`` maps a reader name ("reader1", "reader2") to its table. Patients of the
    cohort without a row in the first reader's table were excluded in the cohort stage.
    """
    for reader, path in paths.items():
        table = read_feature_table(path, id_column)
        table = table[table["patient_id"].isin(patient_ids)]
        name = "features.csv" if reader == "reader1" else f"features_{reader}.csv"
        table.to_csv(stage_dir / name, index=False)
        if reader == "reader1":
            write_json(stage_dir / "summary.json", {"source": f"feature table {path}", "n_cases": len(table),
                                                    "n_features": table.shape[1] - 1})
    write_json(stage_dir / "exclusions.json", [])
