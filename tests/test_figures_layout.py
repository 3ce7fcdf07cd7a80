"""Layout of the report figures: every text inside the canvas and legible at print size; the
workflow and forest figures show the counts and estimates of results.json (checked by hand
against tests/fixtures/results_example.json and a hand-made risk_scores record)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from studyrunner.report.figures import draw_deep_figures, draw_figures
from studyrunner.report.figures.forest import comparison_forest, subgroup_forest
from studyrunner.report.figures.workflow import evaluation_box, workflow_figure, workflow_lanes
from studyrunner.results.models import Results, RiskScores
from tests.test_deep_figures import tiny_results

FIXTURE = Path(__file__).parent / "fixtures" / "results_example.json"
MINUS, EN, EM, NBSP = "\u2212", "\u2013", "\u2014", "\u00a0"
MIN_FONT_PT = 6.0  # drawn size; the PDF prints figures 174/160 mm wide (img width 100%), so about 6.5 pt printed
TOLERANCE_PX = 1.0


def texts(fig: Figure) -> list[Text]:
    """The visible, non-empty text artists of ``fig``."""
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]


def drawn_texts(fig: Figure) -> list[tuple[Text, Bbox]]:
    """The texts a draw of ``fig`` paints (tick labels beyond the view limits are not), with
    their extents in pixels."""
    drawn: list[tuple[Text, Bbox]] = []
    original = Text.draw

    def draw(self: Text, renderer: Any) -> None:
        original(self, renderer)
        if self.get_visible() and self.get_text().strip():
            drawn.append((self, self.get_window_extent(renderer)))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Text, "draw", draw)
        fig.canvas.draw()
    return drawn


def layout_problems(fig: Figure) -> list[str]:
    """Drawn texts reaching outside the canvas or smaller than ``MIN_FONT_PT``."""
    canvas = fig.bbox
    problems = []
    for text, box in drawn_texts(fig):
        if (box.x0 < canvas.x0 - TOLERANCE_PX or box.y0 < canvas.y0 - TOLERANCE_PX
                or box.x1 > canvas.x1 + TOLERANCE_PX or box.y1 > canvas.y1 + TOLERANCE_PX):
            problems.append(f"outside the canvas: {text.get_text()!r} {box.bounds} in {canvas.bounds}")
        if text.get_fontsize() < MIN_FONT_PT:
            problems.append(f"{text.get_fontsize()} pt: {text.get_text()!r}")
    return problems


@pytest.fixture
def checked_figures(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Checks every figure as it is saved; returns {file name: problems}, filled as figures are saved."""
    found: dict[str, list[str]] = {}
    original = Figure.savefig

    def savefig(self: Figure, path: Any, *args: Any, **kwargs: Any) -> None:
        found[Path(str(path)).name] = layout_problems(self)
        original(self, path, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    return found


def fixture_results() -> Results:
    return Results.model_validate(json.loads(FIXTURE.read_text(encoding="utf-8")))


def test_study_figures_keep_their_text_inside(tmp_path: Path, checked_figures: dict[str, list[str]]) -> None:
    figures = draw_figures(fixture_results(), tmp_path)
    assert {"flow", "workflow", "discrimination", "km_training", "km_test"} <= set(figures)
    assert set(checked_figures) == {path.name for path in figures.values()}
    assert {name: p for name, p in checked_figures.items() if p} == {}


def test_cnn_figures_keep_their_text_inside(tmp_path: Path, checked_figures: dict[str, list[str]]) -> None:
    run_dir = tmp_path / "run"
    results = Results.model_validate(tiny_results(run_dir))
    figures = {**draw_deep_figures(results, tmp_path / "deep", run_dir), **draw_figures(results, tmp_path / "study")}
    assert len(checked_figures) == len(figures) > 10
    assert {name: p for name, p in checked_figures.items() if p} == {}


# --------------------------------------------------------------------------- workflow


def test_workflow_counts_from_the_fixture() -> None:
    results = fixture_results()
    lanes = {lane.title: [[text for text, _ in box] for box in lane.boxes] for lane in workflow_lanes(results)}
    # fixture: 240 in the clinical table, 9 exclusions (4 images, 2 eligibility, 2 validation, 1 radiomics),
    # 231 included; modelling 116 + validation 46 = 162 training, 69 test
    assert lanes["Patients"] == [
        ["Clinical table", "n = 240"],
        ["Excluded (n = 9)", "Eligibility criteria (n = 2)", "Clinical-table validation (n = 2)",
         "Images (n = 4)", "Radiomics extraction (n = 1)"],
        ["Included", "n = 231"],
        ["Split", "Training set: n = 162", "Test set: n = 69"],
    ]
    assert lanes["Radiomics"] == [
        ["Features extracted", "n = 107 per patient", "232 CT studies"],
        ["Screened", "univariable Cox, p < 0.05", "n = 7"],
        ["Final model", "n = 4 features", "cut-off: training median"],
    ]
    assert "Deep learning" not in lanes
    assert [text for text, _ in evaluation_box(results)] == [
        "Evaluation", "Training (modelling + validation): n = 162, events = 98", "Test: n = 69, events = 45"]
    fig = workflow_figure(workflow_lanes(results), evaluation_box(results))
    drawn = {t.get_text().replace(NBSP, " ") for t in texts(fig)}
    assert {"Patients", "Radiomics", "n = 240", "n = 231", "Training set: n = 162", "n = 7"} <= drawn
    assert layout_problems(fig) == []


def test_exclusion_stages_match_the_fixture() -> None:
    """The stage counts of the workflow's exclusion box, counted straight from the fixture."""
    data = json.loads(FIXTURE.read_text(encoding="utf-8"))
    stages: dict[str, int] = {}
    for record in data["flow"]["exclusions"]:
        stages[record["stage"]] = stages.get(record["stage"], 0) + 1
    assert stages == {"images": 4, "eligibility": 2, "clinical_validation": 2, "radiomics": 1}


# --------------------------------------------------------------------------- forest plots


def risk_scores() -> RiskScores:
    """A hand-made risk_scores record: one subgroup column with an estimable and a
    non-estimable level, and the C-index comparison in two cohorts."""
    block = {"label": "MOSRS", "endpoint": "os",
             "cutoff": {"value": 0.1, "method": "xtile", "label": "X-tile"}}
    return RiskScores.model_validate({
        "cohorts": {"training": ["modelling"], "test": ["test"]},
        "scores": {"mosrs": block, "osrs": {**block, "label": "OSRS"}},
        "headline_score": "mosrs", "comparison_scores": ["mosrs", "osrs"],
        "comparison": {"training": {"c_a": 0.6519, "c_b": 0.6360, "diff": 0.01587, "se_diff": 0.014562, "p": 0.2759},
                       "test": {"c_a": 0.6386, "c_b": 0.6277, "diff": 0.01087, "se_diff": None, "p": None,
                                "test_reason": "no standard error"}},
        "subgroups": {"tumour_size_mm": {"cohort": "all patients", "levels": [
            {"level": "<= 18", "n": 117, "n_events": 16, "c_index": 0.5072, "hr": None,
             "hr_reason": "no patients in the high-risk group"},
            {"level": "> 18", "n": 119, "n_events": 50, "c_index": 0.5522, "hr": 2.0874, "hr_lower": 1.1583,
             "hr_upper": 3.7619}]},
            "pd_l1": {"not_run": "fewer than two levels"}},
    })


def test_subgroup_forest_rows() -> None:
    forest = subgroup_forest(risk_scores())
    assert forest is not None
    assert forest.log
    assert forest.reference == 1.0
    assert forest.headers == ["n (events)", "HR (95% CI)", "C-index"]
    assert [(r.label, r.heading, r.columns) for r in forest.rows] == [
        ("Tumour size (mm) (all patients)", True, []),
        ("\u2264 18", False, ["117 (16)", EM, "0.507"]),
        ("> 18", False, ["119 (50)", f"2.09 (1.16{EN}3.76)", "0.552"]),
    ]
    assert forest.rows[1].note == "Tumour size (mm) \u2264 18: HR not estimable (no patients in the high-risk group)"


def test_comparison_forest_rows() -> None:
    forest = comparison_forest(risk_scores())
    assert forest is not None
    assert not forest.log
    assert forest.reference == 0.0
    training, test = forest.rows
    # Wald interval by hand: 0.01587 -/+ 1.959964 * 0.014562 = -0.01267, 0.04441
    assert training.lower == pytest.approx(-0.01267, abs=1e-5)
    assert training.upper == pytest.approx(0.04441, abs=1e-5)
    assert training.columns == ["0.652", "0.636", f"0.016 ({MINUS}0.013 to 0.044)", "p = 0.276"]
    assert test.columns == ["0.639", "0.628", "0.011", f"p = {EM}"]
    assert test.note == "Test: difference not tested (no standard error)"


def test_forest_figures_keep_their_text_inside(tmp_path: Path, checked_figures: dict[str, list[str]]) -> None:
    from studyrunner.report.figures.forest import draw_forests

    figures = draw_forests(risk_scores(), tmp_path)
    assert set(figures) == {"forest_subgroups", "forest_comparison"}
    assert checked_figures == {"forest_subgroups.png": [], "forest_comparison.png": []}
