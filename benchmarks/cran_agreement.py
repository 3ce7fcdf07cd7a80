"""Agreement of the CRAN packages with their in-project stand-ins on the real Lung1 cohort.

timeROC, CoxBoost, randomForestSRC and superpc are not in Debian; studyrunner uses each when
R finds it and otherwise runs its own implementation of the same method (DEVELOPERS.md,
"CRAN-only packages and their stand-ins"). This script runs both on the same data, seed and
folds and prints the differences as a Markdown table (benchmarks/cran_agreement.md):

    .venv/bin/python benchmarks/cran_agreement.py [--run RUN_DIR] [--json OUT.json]

- the package side runs in a child process with ``R_LIBS=--lib`` (rpy2 embeds one R per
  process, and R reads its library path when it starts), use_package = TRUE;
- the stand-in side runs in another child without it, use_package = FALSE and the in-project
  time-dependent AUC (``timeroc.R::ipcw_auc``) called directly.

Data: ``../shared/data/nsclc_lung1_real`` (CC BY-NC 3.0, read in place, never copied). With
``--run`` (a finished run of protocols/lung1_real.yaml) the features are its PyRadiomics
features (radiomics/features.csv); without it they are computed here with numpy from the CT
crops and masks (intensity statistics and shape counts, a few seconds: what
tests/test_cran_packages.py uses). Features are z-scored, then screened by univariable Cox
p < ``--p-threshold`` as ``studyrunner stats select`` does; the learners get the screened
features; the time-dependent AUC's marker is the screened feature with the smallest p.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
LUNG1 = REPO.parent / "shared" / "data" / "nsclc_lung1_real"
CRAN_LIB = REPO.parent / "shared" / "cran" / "lib-R4.2-debian12-x86_64"
TIME, EVENT = "os_days", "os_event"
LEARNERS = ("coxboost", "rsf", "superpc")
PACKAGES = {"timeroc": "timeROC", "coxboost": "CoxBoost", "rsf": "randomForestSRC", "superpc": "superpc"}


# ------------------------------------------------------------------------------ data

def image_features(data_dir: Path = LUNG1) -> pd.DataFrame:
    """Intensity and shape features of each tumour, with numpy (one row per patient with a
    non-empty mask): volume, surface voxels (6-neighbourhood) and their ratio, bounding-box
    extent, and HU mean, SD, percentiles, range, skewness, kurtosis, energy and entropy
    (25-HU bins) inside the mask."""
    import SimpleITK as sitk

    rows = {}
    manifest = pd.read_csv(data_dir / "manifest.csv", dtype={"patient_id": str})
    for case in manifest.itertuples():
        image = sitk.ReadImage(str(data_dir / case.image))
        mask = sitk.GetArrayFromImage(sitk.ReadImage(str(data_dir / case.mask))) > 0
        if not mask.any():
            continue
        hu = sitk.GetArrayFromImage(image).astype(float)[mask]
        padded = np.pad(mask, 1)
        interior = padded[1:-1, 1:-1, 1:-1].copy()
        for axis in range(3):
            for shift in (-1, 1):
                interior &= np.roll(padded, shift, axis=axis)[1:-1, 1:-1, 1:-1]
        surface = int(mask.sum() - interior.sum())
        extent = [int(np.ptp(np.nonzero(mask)[axis])) + 1 for axis in range(3)]
        centred = hu - hu.mean()
        counts = np.bincount(((hu - hu.min()) // 25).astype(int))
        probabilities = counts[counts > 0] / hu.size
        rows[case.patient_id] = {
            "volume": float(mask.sum() * np.prod(image.GetSpacing())), "surface_voxels": surface,
            "surface_to_volume": surface / mask.sum(), "max_extent": max(extent),
            "hu_mean": hu.mean(), "hu_sd": hu.std(ddof=1), "hu_p10": np.percentile(hu, 10),
            "hu_p90": np.percentile(hu, 90), "hu_median": np.median(hu),
            "hu_iqr": np.subtract(*np.percentile(hu, [75, 25])), "hu_range": np.ptp(hu),
            "hu_skewness": (centred**3).mean() / hu.std() ** 3,
            "hu_kurtosis": (centred**4).mean() / hu.std() ** 4,
            "hu_energy": float(((hu + 1024.0) ** 2).sum()),
            "hu_entropy": float(-(probabilities * np.log2(probabilities)).sum())}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("patient_id")


def run_features(run_dir: Path) -> pd.DataFrame:
    """The PyRadiomics features of a finished run (radiomics/features.csv)."""
    return pd.read_csv(run_dir / "radiomics" / "features.csv", dtype={"patient_id": str}).set_index("patient_id")


def analysis_table(features: pd.DataFrame, data_dir: Path = LUNG1) -> pd.DataFrame:
    """Outcome + z-scored non-constant features, one row per patient with both."""
    clinical = pd.read_csv(data_dir / "clinical.csv", dtype={"patient_id": str}).set_index("patient_id")
    features = features.loc[:, features.std() > 0]
    z = (features - features.mean()) / features.std()
    return clinical[[TIME, EVENT]].join(z, how="inner")


# ------------------------------------------------------------------------------ one side

def one_side(table_csv: Path, which: str, seed: int, times: list[float], marker: str) -> dict[str, Any]:
    """Time-dependent AUC of ``marker`` and the three CRAN-backed learners on the table,
    with the packages (``which`` = "package") or the stand-ins ("stand-in")."""
    from studyrunner.jsonable import to_jsonable
    from studyrunner.rbridge import r_function
    from studyrunner.statistics.learners import run_learners
    from studyrunner.statistics.timeroc import time_dependent_auc

    table = pd.read_csv(table_csv, index_col=0)
    features = [c for c in table.columns if c not in (TIME, EVENT)]
    started = time.perf_counter()
    if which == "package":
        auc = pd.DataFrame(time_dependent_auc(table, TIME, EVENT, marker, times)["table"])
    else:
        auc = r_function("timeroc", "ipcw_auc")(table[TIME].tolist(), table[EVENT].tolist(),
                                                table[marker].tolist(), times)["table"]
    settings = {name: {"use_package": which == "package"} for name in LEARNERS}
    learners = run_learners(table, TIME, EVENT, features, list(LEARNERS), seed, settings)
    # The forest's seed-to-seed variation, the yardstick for two engines' differences.
    other_seed = run_learners(table, TIME, EVENT, features, ["rsf"], seed + 1, settings)["rsf"]
    return to_jsonable({"which": which, "seconds": time.perf_counter() - started,
                        "timeroc": auc[["time", "auc", "se", "cases", "controls", "implementation"]],
                        "learners": learners, "rsf_other_seed": other_seed})


def run_side(table_csv: Path, which: str, seed: int, times: list[float], marker: str, lib: Path) -> dict[str, Any]:
    """:func:`one_side` in a child process (R_LIBS = ``lib`` for the package side only)."""
    env = {k: v for k, v in os.environ.items() if k != "R_LIBS"}
    if which == "package":
        env["R_LIBS"] = str(lib)
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "side.json"
        subprocess.run([sys.executable, __file__, "side", "--table", str(table_csv), "--which", which,
                        "--seed", str(seed), "--times", ",".join(map(str, times)), "--marker", marker,
                        "--out", str(out)], check=True, env=env, cwd=REPO)
        return json.loads(out.read_text())


# ------------------------------------------------------------------------------ comparison

def _coefficients(entry: dict[str, Any]) -> pd.Series:
    rows = entry["details"]["coefficients"]
    return pd.Series({r["feature"]: r["importance"] for r in rows})


def _importance(entry: dict[str, Any]) -> pd.Series:
    return pd.Series({r["feature"]: r["importance"] for r in entry["importance"]})


def _overlap(a: list[str], b: list[str]) -> dict[str, Any]:
    union = set(a) | set(b)
    return {"n_package": len(a), "n_stand_in": len(b), "n_both": len(set(a) & set(b)),
            "jaccard": len(set(a) & set(b)) / len(union) if union else 1.0, "same_set": set(a) == set(b)}


def compare(package: dict[str, Any], stand_in: dict[str, Any]) -> dict[str, Any]:
    """The differences, per method: implementations that ran, then the numbers."""
    out: dict[str, Any] = {"implementations": {}}
    pkg_auc, own_auc = pd.DataFrame(package["timeroc"]), pd.DataFrame(stand_in["timeroc"])
    out["implementations"]["timeroc"] = [pkg_auc["implementation"].iloc[0], own_auc["implementation"].iloc[0]]
    out["timeroc"] = [{"time": t, "auc_package": a, "auc_stand_in": b, "auc_diff": abs(a - b),
                       "se_package": s, "se_stand_in": u, "se_diff": abs(s - u), "cases": c, "controls": k}
                      for t, a, b, s, u, c, k in zip(pkg_auc["time"], pkg_auc["auc"], own_auc["auc"], pkg_auc["se"],
                                                     own_auc["se"], pkg_auc["cases"], pkg_auc["controls"], strict=True)]
    pkg, own = package["learners"], stand_in["learners"]
    for name in LEARNERS:
        out["implementations"][name] = [pkg[name]["implementation"], own[name]["implementation"]]
        out[f"{name}_errors"] = {"package": pkg[name]["error"], "package_error": pkg[name]["package_error"],
                                 "stand_in": own[name]["error"]}
        out[name] = _overlap(pkg[name]["features"], own[name]["features"])
    if not (pkg["coxboost"]["error"] or own["coxboost"]["error"]):
        a, b = _coefficients(pkg["coxboost"]), _coefficients(own["coxboost"])
        out["coxboost"].update(steps_package=pkg["coxboost"]["details"]["steps"],
                               steps_stand_in=own["coxboost"]["details"]["steps"],
                               max_coefficient_diff=float((a - b).abs().max()),
                               max_abs_coefficient=float(a.abs().max()))
    if not (pkg["superpc"]["error"] or own["superpc"]["error"]):
        a_cv, b_cv = pd.DataFrame(pkg["superpc"]["details"]["cv"]), pd.DataFrame(own["superpc"]["details"]["cv"])
        out["superpc"].update(threshold_package=pkg["superpc"]["details"]["threshold"],
                              threshold_stand_in=own["superpc"]["details"]["threshold"],
                              max_threshold_diff=float((a_cv["threshold"] - b_cv["threshold"]).abs().max()),
                              max_cv_statistic_diff=float((a_cv["statistic"] - b_cv["statistic"]).abs().max()),
                              max_score_diff=float((_importance(pkg["superpc"])
                                                    - _importance(own["superpc"])).abs().max()))
    if not (pkg["rsf"]["error"] or own["rsf"]["error"]):
        a, b = _importance(pkg["rsf"]), _importance(own["rsf"])
        out["rsf"].update(vimp_spearman=float(a.rank().corr(b.rank())),
                          jaccard_package_other_seed=_overlap(pkg["rsf"]["features"],
                                                              package["rsf_other_seed"]["features"])["jaccard"],
                          jaccard_stand_in_other_seed=_overlap(own["rsf"]["features"],
                                                               stand_in["rsf_other_seed"]["features"])["jaccard"],
                          oob_error_package=pkg["rsf"]["details"]["oob_error"],
                          oob_error_stand_in=own["rsf"]["details"]["oob_error"])
    return out


def markdown(result: dict[str, Any]) -> str:
    """The agreement table, one row per method and quantity."""
    c = result["comparison"]
    lines = [f"Data: {result['data']}; {result['n']} patients, {result['n_events']} events; "
             f"{result['n_features']} features, {len(result['screened'])} screened (p < {result['p_threshold']}); "
             f"seed {result['seed']}; marker of the AUC: `{result['marker']}`.", "",
             "| method | package | stand-in | quantity | package value | stand-in value | difference |",
             "|---|---|---|---|---|---|---|"]
    impl = c["implementations"]
    lines.extend(f"| time-dependent AUC | {impl['timeroc'][0]} | {impl['timeroc'][1]} | {what.upper()} at "
                 f"{row['time']:g} days ({row['cases']} cases, {row['controls']} controls) | "
                 f"{row[what + '_package']:.10f} | {row[what + '_stand_in']:.10f} | {row[what + '_diff']:.1e} |"
                 for row in c["timeroc"] for what in ("auc", "se"))
    for name, label in (("coxboost", "CoxBoost"), ("superpc", "SuperPC"), ("rsf", "random survival forest")):
        row, names = c[name], impl[name]
        head = f"| {label} | {names[0]} | {names[1]} |"
        lines.append(f"{head} features selected (both) | {row['n_package']} | {row['n_stand_in']} | "
                     f"{row['n_both']} in both, Jaccard {row['jaccard']:.2f} |")
        if name == "coxboost" and "steps_package" in row:
            lines.append(f"{head} boosting steps (CV) | {row['steps_package']} | {row['steps_stand_in']} | |")
            lines.append(f"{head} coefficients: max abs difference | | | {row['max_coefficient_diff']:.1e} "
                         f"(largest abs coefficient {row['max_abs_coefficient']:.3f}) |")
        if name == "superpc" and "threshold_package" in row:
            lines.append(f"{head} chosen threshold | {row['threshold_package']:.10f} | "
                         f"{row['threshold_stand_in']:.10f} | {row['max_threshold_diff']:.1e} (grid) |")
            lines.append(f"{head} feature scores, CV statistics: max abs difference | | | "
                         f"{row['max_score_diff']:.1e}, {row['max_cv_statistic_diff']:.1e} |")
        if name == "rsf" and "vimp_spearman" in row:
            lines.append(f"{head} OOB error (1 - C) | {row['oob_error_package']:.4f} | "
                         f"{row['oob_error_stand_in']:.4f} | |")
            lines.append(f"{head} permutation importance: Spearman correlation | | | {row['vimp_spearman']:.2f} |")
            lines.append(f"{head} Jaccard of the selection with seed + 1 (same engine) | "
                         f"{row['jaccard_package_other_seed']:.2f} | {row['jaccard_stand_in_other_seed']:.2f} | |")
    return "\n".join(lines)


def agreement(features: pd.DataFrame, data_label: str, p_threshold: float, seed: int, times: list[float],
              lib: Path) -> dict[str, Any]:
    """Both sides on the screened table and their comparison."""
    from studyrunner.statistics.cox import screen_features

    table = analysis_table(features)
    candidates = [c for c in table.columns if c not in (TIME, EVENT)]
    screening = screen_features(table, TIME, EVENT, candidates, p_threshold)
    kept = screening[screening["kept"].astype(bool)].sort_values(["p", "feature"])
    screened = kept["feature"].tolist()
    with tempfile.TemporaryDirectory() as folder:
        csv = Path(folder) / "table.csv"
        table[[TIME, EVENT, *screened]].to_csv(csv)
        sides = {which: run_side(csv, which, seed, times, screened[0], lib) for which in ("package", "stand-in")}
    return {"data": data_label, "n": len(table), "n_events": int(table[EVENT].sum()), "n_features": len(candidates),
            "screened": screened, "p_threshold": p_threshold, "seed": seed, "marker": screened[0], "times": times,
            "package": sides["package"], "stand_in": sides["stand-in"],
            "comparison": compare(sides["package"], sides["stand-in"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", nargs="?", default="compare", choices=["compare", "side"])
    parser.add_argument("--run", type=Path, help="finished run of protocols/lung1_real.yaml (PyRadiomics features)")
    parser.add_argument("--lib", type=Path, default=CRAN_LIB)
    parser.add_argument("--p-threshold", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=20140603)
    parser.add_argument("--times", default="365,730")
    parser.add_argument("--json", type=Path, help="write every number here")
    # the child's arguments
    parser.add_argument("--table", type=Path)
    parser.add_argument("--which", choices=["package", "stand-in"])
    parser.add_argument("--marker")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    times = [float(t) for t in args.times.split(",")]
    if args.command == "side":
        args.out.write_text(json.dumps(one_side(args.table, args.which, args.seed, times, args.marker)))
        return
    if args.run:
        features, label = run_features(args.run), f"PyRadiomics features of {args.run}"
    else:
        features, label = image_features(), "numpy intensity and shape features of the CT crops"
    result = agreement(features, label, args.p_threshold, args.seed, times, args.lib)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    print(markdown(result))


if __name__ == "__main__":
    main()
