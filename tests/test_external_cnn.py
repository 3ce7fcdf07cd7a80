"""`studyrunner external` on a model/ folder with the CNN bundle (format studyrunner.cnn-scores/2).

A tiny CNN study (tests/test_deep_study.py's settings) is frozen and validated on its own
cohort: the frozen networks give back every development score (risk_scores.csv) to 1e-6,
Harrell's C of each survival score equals lifelines', the bundle's baseline survival equals
Breslow's estimator computed by hand, the PRS/PDS AUC equals the Mann-Whitney U statistic
(scipy) and the frozen cut-off's sensitivity/specificity a count by hand. A tampered weights
file and a /1 CNN bundle are refused (exit 2 through the CLI); a folder with the CNN bundle
alone validates the CNN scores, skipping a score whose endpoint the protocol lacks.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from lifelines.utils import concordance_index
from scipy.stats import mannwhitneyu
from typer.testing import CliRunner

from tests.study_runs import N_PATIENTS

pytestmark = [pytest.mark.needs_r, pytest.mark.slow]

TIMES_DAYS = [95.5, 200.5]
SURVIVAL_SCORES = ("osrs", "pfsrs", "mosrs")
ENDPOINT_COLUMNS = {"osrs": ("os_days", "os_event"), "pfsrs": ("pfs_days", "pfs_event"),
                    "mosrs": ("os_days", "os_event")}


@pytest.fixture(scope="module")
def development(deep_run: Path) -> Path:
    """The run folder of the tiny CNN study (the session's), with both frozen bundles in model/."""
    return deep_run


def cnn_external_protocol(folder: Path, development: Path, *, drop_endpoints: tuple[str, ...] = (),
                          response: bool = True) -> Path:
    """A validation protocol over the development cohort itself (its cohort, endpoints and
    preprocessing sections), every patient in one external cohort."""
    study = yaml.safe_load((development.parent / "study.yaml").read_text())
    cohort = {**study["cohort"], "split": {"method": "none", "training": ["development"]}}
    cohort.pop("synthetic_source", None)
    endpoints = {k: v for k, v in study["endpoints"].items() if k not in drop_endpoints}
    for endpoint in endpoints.values():
        if endpoint.get("not_after") in drop_endpoints:
            endpoint.pop("not_after")
    data = {
        "study": {"name": "external_cnn_test", "kind": "external_validation", "synthetic": True,
                  "description": "the tiny CNN study's frozen models on their own cohort"},
        "cohort": cohort,
        "endpoints": endpoints,
        "preprocessing": {"mask_label": study["preprocessing"]["mask_label"]},
        "validation": {"endpoint": "os", "times": TIMES_DAYS, "calibration_groups": 3, "min_events_per_group": 3,
                       **({"response_endpoint": "best_response"} if response else {})},
        "report": {"title": "External validation of the CNN bundle (test)"},
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "external.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def own_cohort(development, tmp_path_factory) -> Path:
    """Both frozen models validated on their own development cohort in one run."""
    from studyrunner.external.run import validate_externally
    from studyrunner.protocol import load_external_protocol
    from studyrunner.runner import RunOptions

    work = tmp_path_factory.mktemp("cnn_own")
    protocol = cnn_external_protocol(work, development)
    return validate_externally(development / "model", load_external_protocol(protocol),
                               RunOptions(out_dir=work / "run", device="cpu"))


def external(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())["external"]


def clinical(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "cohort" / "clinical.csv", dtype={"patient_id": str})


def test_every_frozen_score_gives_back_the_development_scores(own_cohort, development) -> None:
    frozen = pd.read_csv(own_cohort / "cnn_scores" / "scores.csv", dtype={"patient_id": str}).set_index("patient_id")
    written = pd.read_csv(development / "statistics" / "risk_scores.csv",
                          dtype={"patient_id": str}).set_index("patient_id")
    assert len(frozen) == len(written) == N_PATIENTS
    frozen = frozen.loc[written.index]
    for column in (*SURVIVAL_SCORES, "prs", "pds", "os_score_1", "pfs_score_3"):
        assert np.allclose(frozen[column], written[column], rtol=0, atol=1e-6), column
    cutoffs = json.loads((development / "model" / "cnn_bundle.json").read_text())["scores"]
    for name in SURVIVAL_SCORES:
        # the cut-off is a training patient's score: that patient's group can flip by float noise
        clear = (written[name] - cutoffs[name]["cutoff"]).abs() > 1e-6
        assert (frozen.loc[clear, f"{name}_group"] == written.loc[clear, f"{name}_group"]).all(), name


def test_every_model_in_the_folder_is_validated(own_cohort) -> None:
    record = external(own_cohort)
    assert set(record["models"]) == {"radiomics_score", *SURVIVAL_SCORES}
    assert set(record["response"]) == {"prs", "pds"}
    assert record["skipped"] == {}
    assert record["cnn_bundle"]["format"] == "studyrunner.cnn-scores/2"
    assert record["bundle"]["format"] == "studyrunner.radiomics-cox/2"
    assert record["models"]["mosrs"]["source"] == "cnn"
    html = (own_cohort / "report" / "report.html").read_text(encoding="utf-8")
    assert record["cnn_bundle"]["content_sha256"] in html
    for label in ("OSRS", "PFSRS", "MOSRS", "PRS", "PDS", "Response scores"):
        assert label in html
    assert (own_cohort / "report.pdf").stat().st_size > 10_000


def test_harrell_c_of_each_score_equals_lifelines(own_cohort, development) -> None:
    from studyrunner.bundle import load_cnn_bundle

    record = external(own_cohort)
    bundle = load_cnn_bundle(development / "model")
    rows = pd.read_csv(own_cohort / "validation" / "cnn_outcomes.csv", dtype={"patient_id": str})
    table = clinical(own_cohort).set_index("patient_id")
    for name in SURVIVAL_SCORES:
        mine = rows[rows["score"] == name]
        time, _event = ENDPOINT_COLUMNS[name]
        assert np.allclose(mine["time"], table.loc[mine["patient_id"], time].to_numpy(dtype=float))
        model = record["models"][name]
        expected = concordance_index(mine["time"], -mine["lp"], mine["event"])
        assert model["c_index"]["estimate"] == pytest.approx(expected, abs=1e-9), name
        assert model["n"] == len(mine)
        assert model["n_events"] == int(mine["event"].sum())
        assert model["lp_development"]["mean"] == pytest.approx(bundle.scores[name].development.linear_predictor.mean)
        assert model["cutoff"] == bundle.scores[name].cutoff


def test_the_baseline_survival_is_breslows_estimator(development) -> None:
    """S0(t) = exp(-sum over event times t_i <= t of d_i / sum_{j at risk at t_i} exp(lp_j)),
    on the training cohort with each score as the frozen linear predictor."""
    from studyrunner.bundle import load_cnn_bundle

    bundle = load_cnn_bundle(development / "model")
    table = pd.read_csv(development / "statistics" / "risk_scores.csv", dtype={"patient_id": str})
    training = table[table["partition"].isin(["modelling", "validation"])]
    for name in SURVIVAL_SCORES:
        time, event = ENDPOINT_COLUMNS[name]
        rows = training.dropna(subset=[time, event, name])
        t, d, risk = rows[time].to_numpy(float), rows[event].to_numpy(int), np.exp(rows[name].to_numpy(float))
        steps = np.unique(t[d == 1])
        hazard = np.cumsum([d[t == s].sum() / risk[t >= s].sum() for s in steps])
        frozen = bundle.scores[name].baseline_survival
        assert frozen.time == pytest.approx(steps.tolist())
        assert frozen.survival == pytest.approx(np.exp(-hazard).tolist(), rel=1e-9), name
        assert bundle.scores[name].development.n == len(rows)


def test_response_auc_equals_mann_whitney_and_the_cutoff_a_count(own_cohort) -> None:
    record = external(own_cohort)["response"]
    scores = pd.read_csv(own_cohort / "cnn_scores" / "scores.csv", dtype={"patient_id": str})
    rows = scores.merge(clinical(own_cohort)[["patient_id", "best_response"]], on="patient_id")
    rows = rows[rows["best_response"].notna()]
    for name, level in (("prs", "PR"), ("pds", "PD")):
        positive = rows["best_response"] == level
        with_outcome, without = rows.loc[positive, name], rows.loc[~positive, name]
        u = mannwhitneyu(with_outcome, without, alternative="two-sided").statistic
        block = record[name]
        assert block["auc"]["estimate"] == pytest.approx(u / (len(with_outcome) * len(without)), abs=1e-12)
        assert block["auc"]["lower"] <= block["auc"]["estimate"] <= block["auc"]["upper"]
        cut = block["youden_cutoff"]
        called = rows[name] >= cut
        at = block["at_frozen_cutoff"]
        assert at["tp"] == int((called & positive).sum())
        assert at["tn"] == int((~called & ~positive).sum())
        assert at["sensitivity"]["estimate"] == pytest.approx((called & positive).sum() / positive.sum())
        assert at["specificity"]["estimate"] == pytest.approx((~called & ~positive).sum() / (~positive).sum())


def test_a_tampered_weights_file_or_a_version_1_bundle_is_refused(development, tmp_path) -> None:
    from studyrunner.bundle import BundleError, load_cnn_bundle
    from studyrunner.cli import app
    from studyrunner.run_folder import sha256_json

    model = tmp_path / "model"
    shutil.copytree(development / "model", model)
    weights = sorted((model / "weights").glob("*.npz"))[0]
    networks = json.loads((model / "cnn_bundle.json").read_text())["networks"]
    recorded = next(n["weights_sha256"] for n in networks.values() if n["weights"].endswith(weights.name))
    original = weights.read_bytes()
    weights.write_bytes(original[:-8] + b"\0" * 8)
    protocol = cnn_external_protocol(tmp_path / "protocol", development)
    result = CliRunner().invoke(app, ["external", str(model), str(protocol), "--out", str(tmp_path / "run"),
                                      "--device", "cpu"])
    assert result.exit_code == 2
    flat = " ".join(result.output.split())
    assert weights.name in flat
    assert recorded in flat
    assert not (tmp_path / "run" / "cnn_scores").exists()
    weights.write_bytes(original)

    content = json.loads((model / "cnn_bundle.json").read_text())
    content.pop("content_sha256")
    content.pop("versions")
    content["format"] = "studyrunner.cnn-scores/1"
    for score in content["scores"].values():
        score.pop("baseline_survival")
        score.pop("development")
        score["endpoint"] = score["endpoint"]["name"]
    (model / "cnn_bundle.json").write_text(json.dumps({**content, "content_sha256": sha256_json(content)}))
    with pytest.raises(BundleError, match=r"lacks versions, scores\.osrs\.baseline_survival"):
        load_cnn_bundle(model)


def test_a_cnn_bundle_alone_validates_and_skips_an_endpoint_the_protocol_lacks(development, tmp_path) -> None:
    from studyrunner.external.run import validate_externally
    from studyrunner.protocol import load_external_protocol
    from studyrunner.runner import RunOptions

    model = tmp_path / "model"
    model.mkdir()
    shutil.copy(development / "model" / "cnn_bundle.json", model)
    shutil.copytree(development / "model" / "weights", model / "weights")
    protocol = cnn_external_protocol(tmp_path / "protocol", development, drop_endpoints=("pfs",), response=False)
    run_dir = validate_externally(model, load_external_protocol(protocol),
                                  RunOptions(out_dir=tmp_path / "run", device="cpu"))
    record = external(run_dir)
    assert set(record["models"]) == {"osrs", "mosrs"}
    assert "'pfs'" in record["skipped"]["pfsrs"]
    assert set(record["skipped"]) == {"pfsrs", "prs", "pds"}
    assert record.get("bundle") is None
    assert record.get("case_mix") is None
    assert not (run_dir / "radiomics").exists()
    assert (run_dir / "report.pdf").stat().st_size > 10_000


def test_cnn_scoring_on_dask_gives_the_local_scores(own_cohort, development, tmp_path) -> None:
    """Issue 12: the external run on dask:2 (cases cropped and scored in batches on the
    workers, the radiomics features per case) gives the local run's scores byte for byte
    and its results; scoring.json counts the cases per device."""
    from studyrunner.cluster import cluster_session
    from studyrunner.deep.frozen import CASES_PER_BATCH
    from studyrunner.external.run import validate_externally
    from studyrunner.protocol import load_external_protocol
    from studyrunner.runner import RunOptions

    assert N_PATIENTS > 2 * CASES_PER_BATCH  # several batches, on both workers
    protocol = cnn_external_protocol(tmp_path, development)
    with cluster_session("dask:2"):
        on_dask = validate_externally(development / "model", load_external_protocol(protocol),
                                      RunOptions(out_dir=tmp_path / "run", device="cpu", cluster="dask:2"))
    for name in ("cnn_scores/scores.csv", "radiomics/features.csv"):
        assert (on_dask / name).read_bytes() == (own_cohort / name).read_bytes(), name
    assert external(on_dask) == external(own_cohort)
    scoring = json.loads((on_dask / "cnn_scores" / "scoring.json").read_text())
    assert scoring == {"cluster": "dask:2", "device_requested": "cpu", "cases_per_device": {"cpu": N_PATIENTS}}


def test_frozen_cnns_score_dicom_cases_through_their_structure_selector(development, tmp_path) -> None:
    """Three development cases written as a DICOM CT series with an RTSTRUCT of two ROIs: the
    frozen CNNs score them, on a dask:2 cluster too, from the ROI the cohort table's selector
    names, giving their NIfTI scores (the traced contours fill the same voxels); without a
    selector the case is refused, naming both ROIs."""
    import SimpleITK as sitk

    from studyrunner.deep.frozen import score_with_cnn_bundle
    from studyrunner.errors import InputError
    from studyrunner.imaging.structure import STRUCTURE_COLUMN, StructureSelector
    from tests.dicom_cases import mask_contours, write_ct_series, write_rtstruct

    cohort = development.parent / "cohort"
    nifti = pd.read_csv(cohort / "manifest.csv", dtype=str).head(3)
    nifti[["image", "mask"]] = nifti[["image", "mask"]].map(lambda p: str(cohort / p))
    rows = []
    for case in nifti.itertuples(index=False):
        series = write_ct_series(sitk.Cast(sitk.ReadImage(case.image), sitk.sitkInt16), tmp_path / case.patient_id)
        contours = mask_contours(sitk.ReadImage(case.mask))
        rtstruct = write_rtstruct(tmp_path / f"{case.patient_id}_rs.dcm", series,
                                  {"Lung-Left": contours[:1], "GTV-1": contours})
        rows.append({"patient_id": case.patient_id, "image": str(tmp_path / case.patient_id), "mask": str(rtstruct)})
    dicom = pd.DataFrame(rows)
    dicom[STRUCTURE_COLUMN] = StructureSelector(("GTV-1",), None).to_text()
    bundle = development / "model" / "cnn_bundle.json"
    expected = score_with_cnn_bundle(bundle, nifti)
    for cluster in ("local", "dask:2"):
        scored = score_with_cnn_bundle(bundle, dicom, cluster=cluster)
        assert np.allclose(scored[list(SURVIVAL_SCORES)], expected[list(SURVIVAL_SCORES)], rtol=0, atol=1e-6)
    with pytest.raises(InputError, match="holds 2 ROIs"):
        score_with_cnn_bundle(bundle, dicom.drop(columns=STRUCTURE_COLUMN))
