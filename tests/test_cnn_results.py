"""The CNN sections of results.json are typed and the report takes every score, endpoint and
network name from them: with the endpoints renamed (``overall`` for ``os``, ``progression``
for ``pfs``, the scores renamed by ``registry.score_name`` / ``fused_name``) every figure is
still drawn under the new names and every CNN report section shows each figure and no old
name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_deep_figures import EXPECTED_KEYS, tiny_results

from studyrunner.registry import fused_name, score_label, score_name
from studyrunner.report.citations import METHOD_REFERENCES
from studyrunner.report.deep_view import deep_context
from studyrunner.report.figures import draw_deep_figures
from studyrunner.report.flag_view import flag_context
from studyrunner.report.formatting import ci_label
from studyrunner.report.render import reports_dir, template_environment
from studyrunner.report.tripod import tripod_tags
from studyrunner.results.models import Results

RENAMED = {"os": "overall", "pfs": "progression"}
DEEP_SECTIONS = ("_deep_methods", "_deep_scores", "_deep_clinical", "_deep_response", "_deep_explanations")


def name_map() -> dict[str, str]:
    """Every recorded name of the demo's endpoints and scores -> its name after the renaming."""
    names = dict(RENAMED)
    for old, new in RENAMED.items():
        names[score_name(old)] = score_name(new)
        names[fused_name(old)] = fused_name(new)
    return names


def renamed(value: Any, names: dict[str, str]) -> Any:
    """``value`` with every endpoint and score name renamed: keys and strings, score labels
    ("OSRS"), column names ("os_days"), Grad-CAM overlay keys ("P16/osrs/axial")."""
    if isinstance(value, dict):
        return {renamed(k, names): renamed(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [renamed(v, names) for v in value]
    if not isinstance(value, str):
        return value
    if "/" in value:
        return "/".join(renamed(part, names) for part in value.split("/"))
    if value in names:
        return names[value]
    if value.isupper() and value.lower() in names:
        return score_label(names[value.lower()])
    prefix, _, rest = value.partition("_")
    return f"{names[prefix]}_{rest}" if rest and prefix in names else value


def renamed_run(run_dir: Path) -> dict[str, Any]:
    """The hand-made results with the endpoints renamed, and the run's overlays renamed to match."""
    names = name_map()
    results = renamed(tiny_results(run_dir), names)
    overlays_path = run_dir / "explanations" / "overlays.npz"
    with np.load(overlays_path) as overlays:
        arrays = {renamed(key, names): overlays[key] for key in overlays.files}
    np.savez_compressed(overlays_path, **arrays)
    return results


@pytest.mark.parametrize("rename", [False, True])
def test_every_cnn_figure_under_the_recorded_names(tmp_path: Path, rename: bool) -> None:
    run_dir = tmp_path / "run"
    data = renamed_run(run_dir) if rename else tiny_results(run_dir)
    results = Results.model_validate(json.loads(json.dumps(data)))
    assert results.to_json() == json.loads(json.dumps(data))
    figures = draw_deep_figures(results, tmp_path / "figures", run_dir)
    names = name_map() if rename else {}
    expected = {renamed(key.replace("_", "/"), names).replace("/", "_") for key in EXPECTED_KEYS}
    assert len(expected) == len(EXPECTED_KEYS)
    assert set(figures) == expected
    if rename:
        assert {"risk_vectors_overall", "km_moverallrs_test", "response_km_overall"} <= set(figures)


def render_deep_sections(results: Results, figures: dict[str, str]) -> str:
    """The five CNN sections of the report, rendered with the report's environment."""
    environment = template_environment(reports_dir() / "templates")
    source = '{% import "_macros.html.j2" as m %}' + "".join(
        f'{{% include "{name}.html.j2" %}}' for name in DEEP_SECTIONS)
    context = {**deep_context(results), **flag_context(results), "figures": figures, "refs": METHOD_REFERENCES,
               "ci": ci_label(), "tripod_tags": tripod_tags()}
    return environment.from_string(source).render(**context)


@pytest.mark.parametrize("rename", [False, True])
def test_cnn_report_sections_show_every_figure_and_only_recorded_names(tmp_path: Path, rename: bool) -> None:
    run_dir = tmp_path / "run"
    data = renamed_run(run_dir) if rename else tiny_results(run_dir)
    results = Results.model_validate(data)
    drawn = draw_deep_figures(results, tmp_path / "figures", run_dir)
    figures = {key: f"figures/{key}.png" for key in drawn}
    html = render_deep_sections(results, figures)
    missing = [key for key, path in figures.items() if path not in html]
    assert not missing, f"figures drawn but not shown in the report: {missing}"
    if rename:
        for old in ("OSRS", "PFSRS", "MOSRS"):
            assert old not in html
        assert "OVERALLRS and PROGRESSIONRS" in html
        assert "fuses them into MOVERALLRS" in html
    else:
        assert "OSRS and PFSRS" in html
        assert "a Cox model of overall survival on OSRS and PFSRS fuses them into MOSRS" in html
