"""What happened in this run to each feature of the source paper's final model.

A paper names its features as its software wrote them (R's ``make.names`` turns PyRadiomics'
"log-sigma-1-0-mm-3D_glcm_ClusterProminence" into "log.sigma.1.0.mm.3D_glcm_ClusterProminence"),
so names are matched ignoring case and every character that is not a letter or a digit. For
each feature the run's own files say whether it was extracted (radiomics/features.csv), its
inter-reader ICC and whether it passed the reproducibility filter (statistics/icc.csv), whether
it passed univariable screening (statistics/screening.csv), which learners chose it and whether
the learners' combination kept it (statistics/selection.json), and whether it is in the final
model (statistics/model.json).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd


def name_key(name: str) -> str:
    """A feature name reduced to lower-case letters and digits: "log.sigma.1.0.mm.3D_glcm_X" and
    "log-sigma-1-0-mm-3D_glcm_X" give the same key."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _by_key(names: list[str]) -> dict[str, str]:
    return {name_key(n): n for n in names}


def feature_fate(paper_name: str, run_dir: Path) -> dict[str, Any]:
    """The PublishedFeature record of one of the paper's features (see the module docstring)."""
    statistics = run_dir / "statistics"
    features_csv = run_dir / "radiomics" / "features.csv"
    extracted = _by_key(pd.read_csv(features_csv, nrows=0).columns.tolist()) if features_csv.is_file() else {}
    key = name_key(paper_name)
    feature = extracted.get(key)
    record: dict[str, Any] = {"name": paper_name, "feature": feature, "extracted": feature is not None,
                              "icc": None, "reproducible": None, "screened": None, "screening_p": None,
                              "learners": [], "combined": None, "in_model": None}
    if feature is None:
        return record
    icc_csv = statistics / "icc.csv"
    if icc_csv.is_file():
        icc = pd.read_csv(icc_csv).set_index("feature")
        if feature in icc.index:
            record["icc"] = None if pd.isna(icc.at[feature, "icc"]) else float(icc.at[feature, "icc"])
            record["reproducible"] = bool(icc.at[feature, "kept"])
    screening_csv = statistics / "screening.csv"
    if screening_csv.is_file():
        screening = pd.read_csv(screening_csv).set_index("feature")
        record["screened"] = bool(feature in screening.index and screening.at[feature, "kept"])
        if feature in screening.index and not pd.isna(screening.at[feature, "p"]):
            record["screening_p"] = float(screening.at[feature, "p"])
    selection = _read_json(statistics / "selection.json")
    if selection is not None:
        record["learners"] = [name for name, entry in selection.get("learners", {}).items()
                              if feature in (entry.get("features") or [])]
        record["combined"] = feature in selection.get("combined", [])
    model = _read_json(statistics / "model.json")
    if model is not None:
        record["in_model"] = feature in model.get("selected", [])
    return record


def published_features(run_dir: Path, names: list[str]) -> list[dict[str, Any]] | None:
    """The fate of each of the paper's features in the run (None when the protocol names none)."""
    if not names:
        return None
    return [feature_fate(name, run_dir) for name in names]
