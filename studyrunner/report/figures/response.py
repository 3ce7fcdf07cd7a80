"""Figures of the seed-000 response scores (He et al., Transl Lung Cancer Res 2022;11(4):670-685).

ROC curves of the dual-task network's partial-response score (PRS) and progressive-disease
score (PDS) with the AUC and its DeLong 95% CI (DeLong, DeLong & Clarke-Pearson, Biometrics
1988;44:837-845) and the training cohort's Youden cut-off (Youden, Cancer 1950;3:32-35); the
AUC within subgroups; Kaplan-Meier curves of the groups split at the response scores'
training cut-offs (small panels of ``figures.km_panels``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.transforms import blended_transform_factory

from studyrunner.protocol import TimeToEventEndpoint
from studyrunner.report.figures.km_panels import Panel, draw_km_panels
from studyrunner.report.figures.labels import COHORT_LABELS, column_label, level_label
from studyrunner.report.figures.style import (
    FONT_SIZE,
    NEUTRAL,
    REFERENCE_LINE,
    STYLE,
    TEXT_WIDTH_IN,
    floats,
    panels,
    roc_axes,
    save,
    time_colour,
)
from studyrunner.report.formatting import ci_label, fmt_auc, fmt_int, fmt_missing, fmt_num
from studyrunner.results.models import ResponseScore, ResponseSubgroups, Results, RocAnalysis


def response_km_panels(response: dict[str, ResponseScore], endpoint: str) -> list[Panel]:
    """One panel per response score with a stratification for ``endpoint`` (low: score <= cut-off).
    The groups are coloured by the risk they stand for (``ResponseScore.high_score_risk``): a
    high PRS marks the lower-risk group, so it has the low-risk colour of every other figure."""
    km_panels: list[Panel] = []
    for block in response.values():
        strat = block.stratification.get(endpoint)
        if strat is not None and strat.km:
            label, cut = block.label, fmt_num(strat.cutpoint, 3)
            risk = {"high": "low", "low": "high"} if block.high_score_risk == "lower" else None
            km_panels.append(Panel(f"{label}\ntraining cut-off {cut}", strat,
                                   {"low": f"{label} \u2264 {cut}", "high": f"{label} > {cut}"}, risk))
    return km_panels


def _score_title(block: ResponseScore) -> str:
    """A response score with the outcome it predicts: "PRS: partial response"."""
    return block.label + (f": {block.outcome}" if block.outcome else "")


# --------------------------------------------------------------------------- ROC


def youden_point(block: RocAnalysis) -> tuple[float, float] | None:
    """The cut-off's point on the ROC plane: (1 - specificity, sensitivity)."""
    sens, spec = block.sensitivity, block.specificity
    if sens is None or spec is None:
        return None
    return 1.0 - float(spec), float(sens)


def draw_response_roc(blocks: Sequence[ResponseScore], path: Path) -> Path:
    """One panel per score: training and test ROC curves, AUC (95% CI) in the legend, the
    training cohort's Youden cut-off marked on the training curve."""
    with plt.rc_context(STYLE):
        fig, axes = panels(len(blocks), height=3.55)
        fig.subplots_adjust(left=0.09, right=0.98, top=0.92, bottom=0.33, wspace=0.3)
        for ax, block in zip(axes, blocks, strict=False):
            ax.plot([0, 1], [0, 1], **REFERENCE_LINE)
            _cohort_curves(ax, block.by_cohort)
            training = block.by_cohort.get("training")
            point = youden_point(training) if training is not None else None
            if training is not None and point is not None:
                ax.plot(*point, "D", color="#1a1a1a", ms=4.5, zorder=4,
                        label=f"Training Youden cut-off {fmt_num(training.cutoff, 3)}")
            roc_axes(ax)
            ax.set_title(_score_title(block), loc="left")
            ax.legend(loc="upper left", bbox_to_anchor=(-0.2, -0.2), title=f"AUC ({ci_label()})",
                      title_fontsize=FONT_SIZE - 1, fontsize=FONT_SIZE - 1.5, alignment="left")
        return save(fig, path)


def _cohort_curves(ax: Axes, by_cohort: dict[str, RocAnalysis]) -> None:
    """The training and test ROC curves of one score, AUC (CI) in their legend labels."""
    for i, cohort in enumerate(c for c in ("training", "test") if c in by_cohort):
        block = by_cohort[cohort]
        if block.curve is None or not block.curve.fpr:
            continue
        auc = fmt_auc(block.auc, block.auc_lower, block.auc_upper, reason=block.cutoff_reason)
        ax.plot(floats(block.curve.fpr), floats(block.curve.tpr), color=time_colour(2 * i), lw=1.2,
                label=f"{COHORT_LABELS[cohort]} (n = {fmt_int(block.n)}): AUC {auc}")


# --------------------------------------------------------------------------- subgroup AUCs


def response_subgroup_rows(subgroups: dict[str, ResponseSubgroups]) -> list[dict[str, Any]]:
    """Rows of the subgroup AUC plot: a heading per column, then one row per level
    {"label", "heading", "auc", "lower", "upper", "n", "reason"}."""
    rows: list[dict[str, Any]] = []
    for column, record in subgroups.items():
        if not record.table:
            continue
        rows.append({"label": column_label(column), "heading": True})
        rows.extend({"label": level_label(entry.subgroup), "heading": False, "auc": entry.auc,
                     "lower": entry.auc_lower, "upper": entry.auc_upper, "n": entry.n,
                     "reason": entry.reason} for entry in record.table)
    return rows


def draw_response_subgroups(blocks: Sequence[ResponseScore], path: Path) -> Path:
    """AUC with its CI within each subgroup level, one panel per score (stacked)."""
    tables = [response_subgroup_rows(block.subgroups) for block in blocks]
    row_h, gap_h = 0.19, 0.5
    heights = [len(rows) * row_h for rows in tables]
    fig_h = sum(heights) + gap_h * len(blocks) + 0.4
    with plt.rc_context(STYLE):
        fig = plt.figure(figsize=(TEXT_WIDTH_IN, fig_h))
        grid = fig.add_gridspec(len(blocks), 1, height_ratios=heights, left=0.34, right=0.68, top=1 - 0.3 / fig_h,
                                bottom=0.4 / fig_h, hspace=gap_h / (sum(heights) / len(blocks)))
        for k, (block, rows) in enumerate(zip(blocks, tables, strict=True)):
            ax = fig.add_subplot(grid[k])
            _subgroup_aucs(ax, rows)
            ax.set_title(_score_title(block), loc="left")
            ax.text(1.03, -1.0, f"AUC ({ci_label()})", transform=ax.get_yaxis_transform(), ha="left",
                    va="center", fontweight="bold")
            if k == len(blocks) - 1:
                ax.set_xlabel("Area under the ROC curve")
        return save(fig, path)


def _subgroup_aucs(ax: Axes, rows: Sequence[Mapping[str, Any]]) -> None:
    """One score's rows: the AUC and CI of each level with its text on the right, labels on the left."""
    labels = blended_transform_factory(ax.figure.transFigure, ax.transData)
    ax.axvline(0.5, **REFERENCE_LINE)
    for i, row in enumerate(rows):
        if row["heading"]:
            continue
        if row["auc"] is None:
            text = f"{fmt_missing('not estimable')}; n = {fmt_int(row['n'])}"
        else:
            if row["lower"] is not None and row["upper"] is not None:
                ax.plot([row["lower"], row["upper"]], [i, i], color=NEUTRAL, lw=1.2)
            ax.plot([row["auc"]], [i], "s", color=NEUTRAL, ms=4)
            text = f"{fmt_auc(row['auc'], row['lower'], row['upper'])}; n = {fmt_int(row['n'])}"
        ax.text(1.03, i, text, transform=ax.get_yaxis_transform(), ha="left", va="center", fontsize=FONT_SIZE - 0.5)
    for i, row in enumerate(rows):
        ax.text(0.01 if row["heading"] else 0.03, i, row["label"], transform=labels, ha="left", va="center",
                fontweight="bold" if row["heading"] else "normal")
    ax.set_yticks([])
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlim(0, 1)


# --------------------------------------------------------------------------- entry point


def draw_response_figures(results: Results, figures_dir: Path) -> dict[str, Path]:
    """The response-score figures that results.json has data for.

    Keys: "response_km_<endpoint>" (each endpoint the scores are stratified for),
    "response_roc", "response_subgroups"."""
    figures: dict[str, Path] = {}
    response = (results.risk_scores.response if results.risk_scores is not None else None) or {}
    stratified = list(dict.fromkeys(name for block in response.values() for name in block.stratification))
    for name in stratified:
        endpoint = results.endpoints.get(name)
        km_panels = response_km_panels(response, name)
        if km_panels and isinstance(endpoint, TimeToEventEndpoint):
            figures[f"response_km_{name}"] = draw_km_panels(
                km_panels, endpoint, f"{endpoint.label} by the response scores (all patients)",
                figures_dir / f"response_km_{name}.png", columns=2)
    with_roc = [b for b in response.values() if any(r.curve is not None for r in b.by_cohort.values())]
    if with_roc:
        figures["response_roc"] = draw_response_roc(with_roc, figures_dir / "response_roc.png")
    with_sub = [b for b in response.values() if response_subgroup_rows(b.subgroups)]
    if with_sub:
        figures["response_subgroups"] = draw_response_subgroups(with_sub, figures_dir / "response_subgroups.png")
    return figures
