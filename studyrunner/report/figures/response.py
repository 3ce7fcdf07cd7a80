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

from studyrunner.report.figures.km_panels import Panel, draw_km_panels
from studyrunner.report.figures.labels import COHORT_LABELS, column_label, level_label, score_label
from studyrunner.report.figures.style import (
    FONT_SIZE,
    NEUTRAL,
    REFERENCE_LINE,
    STYLE,
    TEXT_WIDTH_IN,
    panels,
    recorded,
    roc_axes,
    save,
    time_colour,
)
from studyrunner.report.formatting import ci_label, fmt_auc, fmt_int, fmt_missing, fmt_num

RESPONSE_SCORES = ("prs", "pds")


def response_km_panels(results: Mapping[str, Any], endpoint: str) -> list[Panel]:
    """One panel per response score with a stratification for ``endpoint`` (low: score <= cut-off)."""
    response = (results.get("risk_scores") or {}).get("response") or {}
    km_panels: list[Panel] = []
    for name in RESPONSE_SCORES:
        block = ((response.get(name) or {}).get("stratification") or {}).get(endpoint)
        if block and block.get("km"):
            label, cut = score_label(results, name), fmt_num(block.get("cutpoint"), 3)
            km_panels.append((f"{label}\ntraining cut-off {cut}", block,
                              {"low": f"{label} \u2264 {cut}", "high": f"{label} > {cut}"}))
    return km_panels


def _score_title(results: Mapping[str, Any], name: str) -> str:
    """A response score with the outcome it predicts: "PRS: partial response"."""
    outcome = results["risk_scores"]["response"][name].get("outcome")
    return score_label(results, name) + (f": {outcome}" if outcome else "")


# --------------------------------------------------------------------------- ROC


def youden_point(block: Mapping[str, Any]) -> tuple[float, float] | None:
    """The cut-off's point on the ROC plane: (1 - specificity, sensitivity)."""
    sens, spec = block.get("sensitivity"), block.get("specificity")
    if sens is None or spec is None:
        return None
    return 1.0 - float(spec), float(sens)


def draw_response_roc(results: Mapping[str, Any], names: Sequence[str], path: Path) -> Path:
    """One panel per score: training and test ROC curves, AUC (95% CI) in the legend, the
    training cohort's Youden cut-off marked on the training curve."""
    response = results["risk_scores"]["response"]
    with plt.rc_context(STYLE):
        fig, axes = panels(len(names), height=3.55)
        fig.subplots_adjust(left=0.09, right=0.98, top=0.92, bottom=0.33, wspace=0.3)
        for ax, name in zip(axes, names, strict=False):
            by_cohort = response[name].get("by_cohort") or {}
            ax.plot([0, 1], [0, 1], **REFERENCE_LINE)
            _cohort_curves(ax, by_cohort)
            point = youden_point(by_cohort.get("training") or {})
            if point is not None:
                ax.plot(*point, "D", color="#1a1a1a", ms=4.5, zorder=4,
                        label=f"Training Youden cut-off {fmt_num(by_cohort['training'].get('cutoff'), 3)}")
            roc_axes(ax)
            ax.set_title(_score_title(results, name), loc="left")
            ax.legend(loc="upper left", bbox_to_anchor=(-0.2, -0.2), title=f"AUC ({ci_label()})",
                      title_fontsize=FONT_SIZE - 1, fontsize=FONT_SIZE - 1.5, alignment="left")
        return save(fig, path)


def _cohort_curves(ax: Axes, by_cohort: Mapping[str, Any]) -> None:
    """The training and test ROC curves of one score, AUC (CI) in their legend labels."""
    for i, cohort in enumerate(c for c in ("training", "test") if by_cohort.get(c)):
        block = by_cohort[cohort]
        curve = block.get("curve") or {}
        if not curve.get("fpr"):
            continue
        auc = fmt_auc(block.get("auc"), block.get("auc_lower"), block.get("auc_upper"),
                      reason=block.get("cutoff_reason"))
        ax.plot(curve["fpr"], curve["tpr"], color=time_colour(2 * i), lw=1.2,
                label=f"{COHORT_LABELS[cohort]} (n = {fmt_int(block.get('n'))}): AUC {auc}")


# --------------------------------------------------------------------------- subgroup AUCs


def response_subgroup_rows(subgroups: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows of the subgroup AUC plot: a heading per column, then one row per level
    {"label", "heading", "auc", "lower", "upper", "n", "reason"}."""
    rows: list[dict[str, Any]] = []
    for column, record in subgroups.items():
        if not record or not record.get("table"):
            continue
        rows.append({"label": column_label(column), "heading": True})
        rows.extend({"label": level_label(entry.get("subgroup")), "heading": False, "auc": entry.get("auc"),
                     "lower": entry.get("auc_lower"), "upper": entry.get("auc_upper"), "n": entry.get("n"),
                     "reason": entry.get("reason")} for entry in record["table"])
    return rows


def draw_response_subgroups(results: Mapping[str, Any], names: Sequence[str], path: Path) -> Path:
    """AUC with its CI within each subgroup level, one panel per score (stacked)."""
    response = results["risk_scores"]["response"]
    tables = {name: response_subgroup_rows(response[name].get("subgroups") or {}) for name in names}
    row_h, gap_h = 0.19, 0.5
    heights = [len(rows) * row_h for rows in tables.values()]
    fig_h = sum(heights) + gap_h * len(names) + 0.4
    with plt.rc_context(STYLE):
        fig = plt.figure(figsize=(TEXT_WIDTH_IN, fig_h))
        grid = fig.add_gridspec(len(names), 1, height_ratios=heights, left=0.34, right=0.68, top=1 - 0.3 / fig_h,
                                bottom=0.4 / fig_h, hspace=gap_h / (sum(heights) / len(names)))
        for k, name in enumerate(names):
            ax = fig.add_subplot(grid[k])
            _subgroup_aucs(ax, tables[name])
            ax.set_title(_score_title(results, name), loc="left")
            ax.text(1.03, -1.0, f"AUC ({ci_label()})", transform=ax.get_yaxis_transform(), ha="left",
                    va="center", fontweight="bold")
            if k == len(names) - 1:
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


def draw_response_figures(results: Mapping[str, Any], figures_dir: Path) -> dict[str, Path]:
    """The PRS/PDS figures that results.json has data for.

    Keys: "response_km_os", "response_km_pfs", "response_roc", "response_subgroups"."""
    figures: dict[str, Path] = {}
    response = (results.get("risk_scores") or {}).get("response") or {}
    for name in ("os", "pfs"):
        km_panels = response_km_panels(results, name)
        if km_panels:
            endpoint = (results.get("endpoints") or {}).get(name) or {}
            figures[f"response_km_{name}"] = draw_km_panels(
                km_panels, endpoint, f"{endpoint.get('label', 'Survival')} by the response scores (all patients)",
                figures_dir / f"response_km_{name}.png", columns=2)
    with_roc = [n for n in RESPONSE_SCORES if recorded(response.get(n))
                and any((b or {}).get("curve") for b in (response[n].get("by_cohort") or {}).values())]
    if with_roc:
        figures["response_roc"] = draw_response_roc(results, with_roc, figures_dir / "response_roc.png")
    with_sub = [n for n in RESPONSE_SCORES if recorded(response.get(n))
                and response_subgroup_rows(response[n].get("subgroups") or {})]
    if with_sub:
        figures["response_subgroups"] = draw_response_subgroups(results, with_sub,
                                                                figures_dir / "response_subgroups.png")
    return figures
