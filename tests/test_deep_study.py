"""The nsclc_ici deep-learning study end to end on CPU with a tiny network (synthetic cohort).

Checks the CNN scores against independent references: the Cox selection and fusion refitted
with lifelines on the scores the run wrote, every C-index against lifelines, the interval
cut-offs against numpy's tertiles, the z-score statistics against the fitting crops; and
that the test cohort's outcomes never reach training or model choice.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter
from lifelines.utils import concordance_index

from tests.study_runs import COUNTS, TINY_CROP

pytestmark = [pytest.mark.slow, pytest.mark.needs_r]

def results(run: Path) -> dict:
    return json.loads((run / "results.json").read_text())


def scored(run: Path) -> pd.DataFrame:
    return pd.read_csv(run / "statistics" / "risk_scores.csv", dtype={"patient_id": str})


def test_interval_cutoffs_are_the_training_event_tertiles(deep_run):
    training = json.loads((deep_run / "deep" / "training.json").read_text())
    table = scored(deep_run)
    train = table[table["partition"].isin(["modelling", "validation"])]
    for endpoint, time, event in (("os", "os_days", "os_event"), ("pfs", "pfs_days", "pfs_event")):
        expected = np.quantile(train.loc[train[event] == 1, time], [1 / 3, 2 / 3])
        assert training["networks"][endpoint]["cutoffs"] == pytest.approx(expected.tolist())
    assert training["n"] == {"fit": COUNTS["modelling"], "model_choice": COUNTS["validation"],
                             "training": COUNTS["modelling"] + COUNTS["validation"], "test": COUNTS["test"]}


def test_zscore_statistics_come_from_the_fitting_partition_only(deep_run):
    from studyrunner.deep.crops import tumour_crop

    crops = json.loads((deep_run / "deep" / "crops.json").read_text())
    clinical = pd.read_csv(deep_run / "cohort" / "clinical.csv", dtype={"patient_id": str})
    fit = clinical[clinical["partition"] == "modelling"]
    volumes = np.stack([tumour_crop(r.image, r.mask, spacing_mm=TINY_CROP["spacing_mm"],
                                    size_voxels=TINY_CROP["size_voxels"]) for r in fit.itertuples()])
    assert crops["zscore"]["mean"] == pytest.approx(float(volumes.astype(float).mean()), rel=1e-9)
    assert crops["zscore"]["sd"] == pytest.approx(float(volumes.astype(float).std()), rel=1e-9)


def test_osrs_pfsrs_and_mosrs_equal_lifelines_cox_fits_on_the_training_cohort(deep_run):
    res = results(deep_run)["risk_scores"]
    table = scored(deep_run)
    train = table[table["partition"].isin(["modelling", "validation"])]
    for name, time, event in (("osrs", "os_days", "os_event"), ("pfsrs", "pfs_days", "pfs_event")):
        kept = res["scores"][name]["selection"]["kept"]
        kept = [kept] if isinstance(kept, str) else kept
        fit = CoxPHFitter().fit(train[[time, event, *kept]], time, event)
        coefs = res["scores"][name]["selection"]["lp_coefficients"]
        for term in kept:
            assert coefs[term] == pytest.approx(fit.params_[term], rel=1e-4, abs=1e-6)
        rebuilt = sum(coefs[t] * table[t] for t in kept)
        assert np.allclose(rebuilt, table[name], atol=1e-8)
    fused = CoxPHFitter().fit(train[["os_days", "os_event", "osrs", "pfsrs"]], "os_days", "os_event")
    fusion = res["scores"]["mosrs"]["fusion"]["fused_coefficients"]
    assert fusion["osrs"] == pytest.approx(fused.params_["osrs"], rel=1e-4, abs=1e-6)
    assert fusion["pfsrs"] == pytest.approx(fused.params_["pfsrs"], rel=1e-4, abs=1e-6)


def test_every_reported_c_index_equals_lifelines_on_the_written_scores(deep_run):
    res = results(deep_run)["risk_scores"]
    table = scored(deep_run)
    cohorts = {"training": table["partition"].isin(["modelling", "validation"]), "test": table["partition"] == "test"}
    endpoints = {"os": ("os_days", "os_event"), "pfs": ("pfs_days", "pfs_event")}
    for name, block in res["scores"].items():
        time, event = endpoints[block["endpoint"]]
        for cohort, mask in cohorts.items():
            rows = table[mask]
            expected = concordance_index(rows[time], -rows[name], rows[event])
            assert block["evaluation"][cohort]["c_index"] == pytest.approx(expected, abs=1e-9)


def test_results_and_pdf_show_every_cnn_score_with_the_oracle(deep_run):
    res = results(deep_run)
    assert set(res["risk_scores"]["scores"]) == {"osrs", "pfsrs", "mosrs"}
    assert set(res["risk_scores"]["response"]) == {"prs", "pds"}
    assert res["risk_scores"]["oracle"]["os"]["test"] is not None
    assert res["explanations"]["spearman"]
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", "-layout", str(deep_run / "report.pdf"), "-"],
                          capture_output=True, text=True, encoding="utf-8", check=True).stdout
    for label in ("OSRS", "PFSRS", "MOSRS", "PRS", "PDS", "Grad-CAM", "oracle"):
        assert label in text
    test_c = res["risk_scores"]["scores"]["mosrs"]["evaluation"]["test"]["c_index"]
    assert f"{test_c:.3f}" in text


def test_the_test_cohort_outcomes_never_reach_training_or_model_choice(deep_run, tmp_path):
    """Scramble the test patients' outcomes and responses: every network's weights and every
    patient's CNN output stay bit-identical (the test cohort is only scored)."""
    from studyrunner.deep.stage import build_deep_predictors
    from studyrunner.protocol import load_protocol

    loaded = load_protocol(deep_run.parent / "study.yaml")
    clinical = pd.read_csv(deep_run / "cohort" / "clinical.csv", dtype={"patient_id": str})
    test = clinical["partition"] == "test"
    rng = np.random.default_rng(7)
    scrambled = clinical.copy()
    for column in ("os_days", "os_event", "pfs_days", "pfs_event", "best_response"):
        scrambled.loc[test, column] = rng.permutation(scrambled.loc[test, column].to_numpy())
    scrambled.loc[test, "pfs_days"] = np.minimum(scrambled.loc[test, "pfs_days"], scrambled.loc[test, "os_days"])
    build_deep_predictors(loaded, scrambled, tmp_path, "cpu", lambda done, total: None)
    original = pd.read_csv(deep_run / "deep" / "scores.csv", dtype={"patient_id": str})
    again = pd.read_csv(tmp_path / "scores.csv", dtype={"patient_id": str})
    pd.testing.assert_frame_equal(original, again)
    for weights in (deep_run / "deep" / "weights").glob("*.npz"):
        a, b = np.load(weights), np.load(tmp_path / "weights" / weights.name)
        assert all(np.array_equal(a[k], b[k]) for k in a.files)


def test_the_frozen_cnn_bundle_reproduces_every_score(deep_run):
    from studyrunner.bundle import BundleError
    from studyrunner.deep.frozen import score_with_cnn_bundle

    clinical = pd.read_csv(deep_run / "cohort" / "clinical.csv", dtype={"patient_id": str})
    test = clinical[clinical["partition"] == "test"]
    frozen = score_with_cnn_bundle(deep_run / "model" / "cnn_bundle.json", test)
    written = scored(deep_run).set_index("patient_id").loc[frozen["patient_id"]].reset_index()
    for column in ("os_score_1", "pfs_score_3", "osrs", "pfsrs", "mosrs", "prs", "pds"):
        assert np.allclose(frozen[column], written[column], rtol=1e-6, atol=1e-8), column

    weights = next((deep_run / "model" / "weights").glob("*.npz"))
    original = weights.read_bytes()
    try:
        weights.write_bytes(original[:-8] + b"\0" * 8)
        with pytest.raises(BundleError, match="missing or altered"):
            score_with_cnn_bundle(deep_run / "model" / "cnn_bundle.json", test)
    finally:
        weights.write_bytes(original)


def test_each_score_is_calibrated_from_its_training_breslow_baseline(deep_run):
    """O/E of a score at a time, by hand: the test cohort's Kaplan-Meier risk over the mean of
    1 - S0(t)^exp(score), S0 Breslow's estimate on the training cohort with the score fixed."""
    from lifelines import KaplanMeierFitter

    res = results(deep_run)
    table = pd.read_csv(deep_run / "statistics" / "risk_scores.csv", dtype={"patient_id": str})
    training = table["partition"].isin(res["risk_scores"]["cohorts"]["training"])
    for name, block in res["risk_scores"]["scores"].items():
        calibration = block.get("calibration") or {}
        if "test" not in calibration:
            continue
        endpoint = res["endpoints"][block["endpoint"]]
        rows = table[table[endpoint["time"]].notna()]
        train, test = rows[training.loc[rows.index]], rows[~training.loc[rows.index]]
        for key, at in calibration["test"]["at"].items():
            t = float(key)
            times, events = train[endpoint["time"]].to_numpy(float), train[endpoint["event"]].to_numpy(int)
            risk = np.exp(train[name].to_numpy(float))
            hazard = sum(events[times == u].sum() / risk[times >= u].sum()
                         for u in np.unique(times[(events == 1) & (times <= t)]))
            expected = float(np.mean(1.0 - np.exp(-hazard) ** np.exp(test[name].to_numpy(float))))
            km = KaplanMeierFitter().fit(test[endpoint["time"]], test[endpoint["event"]])
            observed = 1.0 - float(km.survival_function_at_times(t).iloc[0])
            assert at["predicted"] == pytest.approx(expected, abs=1e-9)
            assert at["oe"]["estimate"] == pytest.approx(observed / expected, abs=1e-9)
        return
    pytest.fail("no score was calibrated on the test cohort")


def test_flags_events_per_group_and_per_sd_hazard_ratios(deep_run):
    """results.json carries the flags the rules find; each risk group's events are those of
    risk_scores.csv counted by hand; the fused score's terms have their per-SD HR exp(coef SD)
    with the training SD from numpy; the headline's refit on its own rows is "by construction"
    (coefficient one, as lifelines refits it) and the PDF says so."""
    from studyrunner.results.flags import compute_flags
    from studyrunner.results.models import Results

    res = results(deep_run)
    recorded = Results.model_validate(res)
    assert recorded.flags == compute_flags(recorded.model_copy(update={"flags": []}))
    table = scored(deep_run)
    training = table["partition"].isin(res["risk_scores"]["cohorts"]["training"])
    cohorts = {"training": training, "test": table["partition"].isin(res["risk_scores"]["cohorts"]["test"])}
    endpoints = {k: (e["time"], e["event"]) for k, e in res["endpoints"].items() if e["type"] == "time_to_event"}
    for name, block in res["risk_scores"]["scores"].items():
        time, event = endpoints[block["endpoint"]]
        for cohort, mask in cohorts.items():
            rows = table[mask & table[time].notna()]
            for group, counts in block["evaluation"][cohort]["groups"].items():
                in_group = rows[rows[f"{name}_group"] == group]
                assert (counts["n"], counts["n_events"]) == (len(in_group), int(in_group[event].sum()))
        for term in (block.get("fusion") or {}).get("coefficients", []):
            sd = float(table.loc[training, term["term"]].std(ddof=1))
            assert term["sd"] == pytest.approx(sd, rel=1e-9)
            assert term["hr_per_sd"] == pytest.approx(np.exp(term["coef"] * sd), rel=1e-9)
    headline = res["risk_scores"]["headline_score"]
    row = next(r for r in res["risk_scores"]["clinical_cox"]["univariate"] if r["covariate"] == headline)
    time, event = endpoints[res["risk_scores"]["scores"][headline]["endpoint"]]
    frame = table.loc[training, [time, event, headline]].dropna()
    refit = CoxPHFitter().fit(frame, time, event, fit_options={"precision": 1e-12})
    assert refit.params_[headline] == pytest.approx(1.0, abs=1e-5)
    assert row["coef"] == pytest.approx(1.0, abs=1e-6)
    assert row["by_construction"]
    assert any(f["code"] == "by_construction" for f in res["flags"])
    text = " ".join(subprocess.run(["pdftotext", "-enc", "UTF-8", str(deep_run / "report.pdf"), "-"],
                                   capture_output=True, text=True, encoding="utf-8", check=True).stdout.split())
    for phrase in ("Flags: results that mislead", "by construction", "HR per SD", "Background.", "Conclusion."):
        assert phrase in text
