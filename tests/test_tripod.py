"""TRIPOD+AI: every one of the 52 sub-items is answered on the page the checklist names, or listed
as "to be completed by the authors"; and the numbers computed for the items (C-index per subgroup,
the interaction test, the reverse Kaplan-Meier follow-up, the development/test differences, the
baseline survival) against independent references (lifelines, numpy, hand computation).
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from studyrunner.report import render_report
from studyrunner.report.tripod import ITEMS, TRIPOD_AI_ITEMS, tripod_tags
from studyrunner.results.models import Results

FIXTURES = Path(__file__).parent / "fixtures"
needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils (pdftotext) not installed")
TAG = re.compile(r"TRIPOD\+AI (\d+[a-g]?(?:, \d+[a-g]?)*)")
TODO_LINE = "To be completed by the authors"


# ----------------------------------------------------------------------------- the checklist


def test_the_checklist_has_the_statement_s_items_once_each() -> None:
    items = [item for item, _, _ in TRIPOD_AI_ITEMS]
    assert len(items) == 52
    assert len(set(items)) == 52
    assert items[:3] == ["1", "2", "3a"]
    assert items[-1] == "27c"
    keys = [i.key for i in ITEMS]
    assert len(set(keys)) == 52
    assert not any(re.search(r"\d", key) for key in keys)
    tags = tripod_tags()
    assert tags["model_output"] == {"ids": ["tripod-15"], "items": ["15"], "prefix": "TRIPOD+AI",
                                    "label": "TRIPOD+AI 15", "topic": "Model output"}
    assert tags["deep_scores"]["ids"] == ["tripod-15-deep-scores", "tripod-22-deep-scores", "tripod-23a-deep-scores"]


def clean(text: str) -> str:
    """Page text as read: whitespace collapsed, margin tags removed, words hyphenated at a line end joined."""
    text = re.sub(r"\s+", " ", TAG.sub(" ", re.sub(r"\s+", " ", text)))
    return re.sub(r"(\w)\u2010 (\w)", r"\1\2", text)


def pdf_pages(pdf: Path, layout: bool = False) -> list[str]:
    args = ["pdftotext", "-enc", "UTF-8", *(["-layout"] if layout else []), str(pdf), "-"]
    text = subprocess.run(args, check=True, capture_output=True, text=True, encoding="utf-8").stdout
    pages = text.split("\f")
    return pages[:-1] if pages and not pages[-1].strip() else pages


def tag_pages(pdf: Path) -> dict[str, set[int]]:
    """item -> the pages (1-based) on which its margin tag is printed: from the words' boxes
    (``pdftotext -bbox``), the item code right of each "TRIPOD+AI" on the same line (the tag is a
    float, so the plain text may put its two words apart)."""
    html = subprocess.run(["pdftotext", "-bbox", str(pdf), "-"], check=True, capture_output=True, text=True,
                          encoding="utf-8").stdout
    word = re.compile(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="[\d.]+">([^<]*)</word>')
    found: dict[str, set[int]] = {}
    for number, page in enumerate(html.split("<page ")[1:], start=1):
        words = [(float(x0), float(y0), float(x1), text) for x0, y0, x1, text in word.findall(page)]
        for _x0, y0, x1, text in words:
            if text != "TRIPOD+AI":
                continue
            for u0, v0, _, code in words:
                if abs(v0 - y0) < 1.5 and x1 <= u0 <= x1 + 8 and re.fullmatch(r"\d+[a-g]?", code):
                    found.setdefault(code, set()).add(number)
    return found


def checklist_rows(pages: list[str]) -> dict[str, dict[str, Any]]:
    """The checklist table read back from the layout text: item -> {"pages": [...], "todo": bool}.
    A row starts with its item code in the first column and ends with its page number(s)."""
    start = next(i for i, page in enumerate(pages) if "TRIPOD+AI checklist: where this report addresses" in page)
    rows: dict[str, dict[str, Any]] = {}
    last = None
    codes = {item for item, _, _ in TRIPOD_AI_ITEMS}
    for page in pages[start:]:
        for line in page.splitlines():
            match = re.match(r"\s*(\d+[a-g]?)\s{2,}(.*?)\s+(\d+(?:, \d+)*)\s*$", line)
            if match and match.group(1) in codes and match.group(1) not in rows:
                last = match.group(1)
                rows[last] = {"pages": [int(p) for p in match.group(3).split(", ")], "todo": TODO_LINE in line}
            elif last is not None and TODO_LINE in line:
                rows[last]["todo"] = True
    return rows


@pytest.fixture(scope="module")
def example_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], list[str]]:
    results = json.loads((FIXTURES / "results_example.json").read_text(encoding="utf-8"))
    run_dir = tmp_path_factory.mktemp("tripod_run")
    (run_dir / "results.json").write_text(json.dumps(results), encoding="utf-8")
    pdf = render_report(run_dir)
    return pdf, pdf_pages(pdf), pdf_pages(pdf, layout=True)


# The example fixture's report_meta gives ethics, funding, conflicts and data availability only,
# and its statistics.subgroups named fairness groups alone (no centre, no clinical subgroup).
EXAMPLE_TODO = {"3a", "3b", "3c", "5b", "6a", "6c", "8b", "8c", "9c", "12d", "18d", "19", "25", "26", "27b", "27c"}


@needs_poppler
def test_each_item_is_answered_on_the_page_the_checklist_names(example_report) -> None:
    pdf, pages, layout = example_report
    rows = checklist_rows(layout)
    assert sorted(rows) == sorted(item for item, _, _ in TRIPOD_AI_ITEMS)
    found = tag_pages(pdf)
    for item, row in rows.items():
        assert found.get(item) == {row["pages"][0]}, f"item {item}: tag on {found.get(item)}, checklist {row['pages']}"
    assert {item for item, row in rows.items() if row["todo"]} == EXAMPLE_TODO
    text = " ".join(re.sub(r"\s+", " ", page) for page in pages)
    assert f"{len(EXAMPLE_TODO)} of 52 items to be completed by the authors" in text


@needs_poppler
def test_items_to_be_completed_show_a_line_where_they_belong(example_report) -> None:
    _, pages, layout = example_report
    rows = checklist_rows(layout)
    topics = {i.item: i.topic for i in ITEMS}
    for item in EXAMPLE_TODO:
        page = clean(pages[rows[item]["pages"][0] - 1])
        assert TODO_LINE in page, item
        if item not in ("12d", "18d"):  # these two say why in their own words
            topic = topics[item]
            assert f"{TODO_LINE}: {topic[0].lower()}{topic[1:]}." in page, item


@needs_poppler
def test_the_computed_items_print_their_numbers(example_report) -> None:
    _, pages, _ = example_report
    text = " ".join(clean(page) for page in pages)
    assert "Inclusion criteria (protocol): adult (18 years or older) (age >= 18)" in text       # 6b
    assert "98 (60%)" in text
    assert "45 (65%)" in text
    assert "512 (470–580) days" in text
    assert "498 (430–NR) days" in text
    assert "0.70 (0.62–0.78)" in text
    assert "0.73 (0.68–0.79)" in text
    assert "χ² 0.43, df 1, p = 0.511" in text                           # interaction LR test
    assert "standardised difference 0.12" in text                       # linear predictor 0.1174
    assert "0.8123" in text
    assert "0.6534" in text


def test_todo_reasons_follow_the_protocol_fields() -> None:
    results = json.loads((FIXTURES / "results_signature.json").read_text(encoding="utf-8"))
    from studyrunner.report.tripod import checklist_view

    rows = {row["item"]: row for row in checklist_view(Results.model_validate(results))}
    # every authors' field is filled in the signature fixture; it names no subgroup
    assert {item for item, row in rows.items() if row["todo"]} == {"12d", "14", "23b"}
    results["report_meta"]["limitations"] = "  "
    rows = {row["item"]: row for row in checklist_view(Results.model_validate(results))}
    assert rows["26"]["todo"] == "report.limitations is not given in the protocol"


# ----------------------------------------------------------------------------- the numbers


def survival_data(n: int = 120, seed: int = 7) -> pd.DataFrame:
    """Continuous times (no ties), a score related to the hazard, two groups with different slopes."""
    rng = np.random.default_rng(seed)
    group = np.where(rng.random(n) < 0.45, "A", "B")
    score = rng.normal(size=n)
    slope = np.where(group == "A", 0.9, 0.3)
    event_time = rng.exponential(1.0 / np.exp(slope * score))
    censor = rng.exponential(1.4, size=n)
    return pd.DataFrame({"time": np.minimum(event_time, censor), "event": (event_time <= censor).astype(int),
                         "score": score, "group": group, "age": rng.integers(40, 85, size=n)})


@pytest.mark.needs_r
def test_c_index_per_subgroup_matches_lifelines() -> None:
    from lifelines.utils import concordance_index

    from studyrunner.statistics.subgroups import subgroup_performance

    df = survival_data()
    result = subgroup_performance(df, "time", "event", "score", df["group"], ["A", "B"])
    for row in result["groups"]:
        part = df[df["group"] == row["group"]]
        assert row["n"] == len(part)
        assert row["n_events"] == int(part["event"].sum())
        # lifelines: higher score = longer survival, so the risk score enters negated
        assert row["c_index"] == pytest.approx(concordance_index(part["time"], -part["score"], part["event"]), abs=1e-9)
        assert row["c_lower"] < row["c_index"] < row["c_upper"]


@pytest.mark.needs_r
def test_interaction_test_matches_lifelines_likelihood_ratio() -> None:
    from lifelines import CoxPHFitter

    from studyrunner.statistics.subgroups import subgroup_performance

    df = survival_data()
    data = df.assign(b=(df["group"] == "B").astype(float))
    data["score_b"] = data["score"] * data["b"]
    main = CoxPHFitter().fit(data[["time", "event", "score", "b"]], "time", "event")
    full = CoxPHFitter().fit(data[["time", "event", "score", "b", "score_b"]], "time", "event")
    statistic = 2 * (full.log_likelihood_ - main.log_likelihood_)
    interaction = subgroup_performance(df, "time", "event", "score", df["group"], ["A", "B"])["interaction"]
    assert interaction["df"] == 1
    assert interaction["statistic"] == pytest.approx(statistic, rel=1e-5)
    from scipy.stats import chi2

    assert interaction["p"] == pytest.approx(chi2.sf(statistic, 1), rel=1e-4)


@pytest.mark.needs_r
def test_subgroup_without_events_has_a_reason_and_one_group_no_test() -> None:
    from studyrunner.statistics.subgroups import subgroup_performance

    df = survival_data(40)
    df.loc[df["group"] == "A", "event"] = 0
    result = subgroup_performance(df, "time", "event", "score", df["group"], ["A", "B"])
    a = next(row for row in result["groups"] if row["group"] == "A")
    assert a["c_index"] is None
    assert a["reason"] == "no event"
    one = subgroup_performance(df, "time", "event", "score", pd.Series("A", index=df.index), ["A"])
    assert one["interaction"]["p"] is None
    assert one["interaction"]["reason"] == "only one group has patients"


@pytest.mark.needs_r
def test_median_follow_up_is_the_reverse_kaplan_meier_median() -> None:
    from lifelines import KaplanMeierFitter

    from studyrunner.statistics.subgroups import median_follow_up

    df = survival_data(90, seed=3)
    reverse = KaplanMeierFitter().fit(df["time"], 1 - df["event"])
    result = median_follow_up(df, "time", "event")
    assert result["median"] == pytest.approx(reverse.median_survival_time_, rel=1e-12)
    assert result["n"] == 90
    assert result["n_events"] == int(df["event"].sum())
    assert result["lower"] <= result["median"] <= result["upper"]


def test_age_groups_by_cut_points() -> None:
    from studyrunner.statistics.subgroups import group_labels, level_order

    ages = pd.Series([40.0, 64.9, 65.0, 80.0, None])
    labels = group_labels(ages, [65])
    assert labels.tolist()[:4] == ["< 65", "< 65", "≥ 65", "≥ 65"]
    assert pd.isna(labels.iloc[4])
    assert level_order(group_labels(pd.Series([90.0, 50.0, 70.0]), [75, 60]), [75, 60]) == [
        "< 60", "60 to < 75", "≥ 75"]


def test_outcome_balance_and_linear_predictor_difference_by_hand() -> None:
    from studyrunner.protocol import CategoricalEndpoint
    from studyrunner.statistics.tripod_items import categorical_balance, development_differences

    rows = pd.DataFrame({"response": ["PR", "SD", "SD", "PD", None]})
    balance = categorical_balance(rows, CategoricalEndpoint(type="categorical", label="Response", column="response",
                                                            levels=["PR", "SD", "PD"]))
    assert balance["n"] == 4
    assert balance["missing"] == 1
    assert [(lv["level"], lv["n"], lv["percent"]) for lv in balance["levels"]] == [
        ("PR", 1, 25.0), ("SD", 2, 50.0), ("PD", 1, 25.0)]

    scored = pd.DataFrame({"risk_score": [0.0, 1.0, 2.0, 1.0, 3.0, 5.0]})
    masks = {"training": pd.Series([True, True, True, False, False, False]),
             "test": pd.Series([False, False, False, True, True, True])}
    table = {"groups": {"Training": {"n": 3}, "Test": {"n": 3}}, "variables": [
        {"column": "age", "label": "Age", "type": "continuous",
         "summary": {"Training": {"mean": 60.0, "sd": 10.0}, "Test": {"mean": 66.0, "sd": 6.0}}},
        {"column": "sex", "label": "Sex", "type": "categorical",
         "levels": [{"level": "Female", "counts": {"Training": {"proportion": 0.5}, "Test": {"proportion": 0.25}}}]}]}
    diff = development_differences(table, scored, masks)
    assert diff is not None
    # training lp 0, 1, 2: mean 1, SD 1; test 1, 3, 5: mean 3, SD 2; pooled SD sqrt(2.5)
    assert diff["linear_predictor"]["smd"] == pytest.approx(2 / math.sqrt(2.5))
    age, female = diff["variables"]
    assert age["smd"] == pytest.approx(6 / math.sqrt((36 + 100) / 2))
    assert age["imbalanced"]
    assert female["smd"] == pytest.approx(-0.25 / math.sqrt((0.25 * 0.75 + 0.25) / 2))
    assert development_differences(table, scored, {"training": masks["training"]}) is None


def test_baseline_survival_is_read_as_a_right_continuous_step() -> None:
    from studyrunner.bundle import BaselineSurvival

    s0 = BaselineSurvival(time=(2.0, 5.0), survival=(0.9, 0.7), cumulative_hazard=(0.105, 0.357), n_risk=(10, 6),
                          n_event=(1, 2), n=10, n_events=3, last_follow_up=8.0, estimator="Breslow")
    assert [s0.value_at(t) for t in (0.0, 1.99, 2.0, 4.0, 5.0, 8.0, 8.5)] == [1.0, 1.0, 0.9, 0.9, 0.7, 0.7, None]


@pytest.mark.needs_r
def test_tripod_record_of_a_stage_folder(tmp_path: Path) -> None:
    """The whole record on a constructed stage folder: counts by hand, S0(t) by Breslow's formula
    in numpy (sum over event times <= t of d_i / sum of exp(lp) at risk), the C-index per sex."""
    from lifelines.utils import concordance_index

    from studyrunner.protocol import load_protocol
    from studyrunner.statistics.tripod_items import tripod_record

    protocol = load_protocol(Path(__file__).resolve().parents[1] / "protocols" / "nsclc_ici.yaml").protocol
    df = survival_data(80, seed=11)
    rng = np.random.default_rng(5)
    clinical = pd.DataFrame({
        "patient_id": [f"P{i:03d}" for i in range(80)], "partition": np.where(np.arange(80) < 56, "modelling", "test"),
        "os_days": df["time"] * 400, "os_event": df["event"], "pfs_days": df["time"] * 300, "pfs_event": df["event"],
        "best_response": rng.choice(["PR", "SD", "PD"], size=80), "sex": np.where(df["group"] == "A", "Female", "Male"),
        "age": df["age"], "histology": rng.choice(["Adenocarcinoma", "Squamous cell carcinoma"], size=80)})
    clinical.loc[3, "best_response"] = None
    scores = clinical[["patient_id", "partition"]].assign(risk_score=0.8 * df["score"], risk_group="low")
    scores.to_csv(tmp_path / "scores.csv", index=False)
    (tmp_path / "model.json").write_text(json.dumps({"selected": ["f1"], "coefficients": {"f1": 0.8},
                                                     "n_candidates": 12}))
    (tmp_path / "normalisation.json").write_text(json.dumps({"f1": {"mean": 2.5, "sd": 0.5}}))
    (tmp_path / "table_one.json").write_text(json.dumps({"groups": {}, "variables": []}))

    record = tripod_record(protocol, clinical, clinical["patient_id"].iloc[1:], tmp_path)  # P000 not analysed
    kept = clinical.iloc[1:]
    train = kept[kept["partition"] == "modelling"]
    os_train = record["cohorts"]["training"]["outcomes"]["os"]
    assert record["cohorts"]["training"]["n"] == len(train) == 55
    assert os_train["n_events"] == int(train["os_event"].sum())
    assert record["cohorts"]["training"]["outcomes"]["best_response"]["missing"] == 1  # P003
    assert record["n_candidates"] == 12

    lp = scores.set_index("patient_id").loc[train["patient_id"], "risk_score"].to_numpy()
    t, e = train["os_days"].to_numpy(), train["os_event"].to_numpy()
    for row in record["specification"]["baseline_survival"]:   # the nsclc protocol's times, 180 and 365 days
        hazard = sum(1 / np.exp(lp[t >= ti]).sum() for ti in np.sort(t[e == 1]) if ti <= row["time"])
        assert row["survival"] == pytest.approx(math.exp(-hazard), rel=1e-10)
    assert record["specification"]["features"] == [{"feature": "f1", "mean": 2.5, "sd": 0.5}]

    sex = record["subgroups"]["fairness"][0]["cohorts"]["training"]["groups"]
    for row in sex:
        part = train[train["sex"] == row["group"]]
        risk = scores.set_index("patient_id").loc[part["patient_id"], "risk_score"]
        assert row["c_index"] == pytest.approx(concordance_index(part["os_days"], -risk.to_numpy(), part["os_event"]))
    assert record["differences"]["linear_predictor"]["training"]["mean"] == pytest.approx(lp.mean())
