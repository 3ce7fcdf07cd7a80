"""Report figures of the seed-000 response scores and Grad-CAM maps, drawn from results.json.

Seed 000 (He et al., Transl Lung Cancer Res 2022;11(4):670-685): ROC curves of the dual-task
network's partial-response score (PRS) and progressive-disease score (PDS) with the AUC and
its DeLong 95% CI (DeLong, DeLong & Clarke-Pearson, Biometrics 1988;44:837-845) and the
training cohort's Youden cut-off (Youden, Cancer 1950;3:32-35); the AUC within subgroups;
Grad-CAM overlays (Selvaraju et al., ICCV 2017) of every score on the CT (Figure 5); and the
Spearman correlation of the SSIM (Wang et al., IEEE TIP 2004;13:600-612) between each
patient's OSRS and PFSRS maps with every score (Figure 6).

Style, sizes and number formatting follow ``studyrunner.report.figures``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from studyrunner.report.figures import (
    FONT_SIZE,
    NEUTRAL,
    STYLE,
    TEXT_WIDTH_IN,
    THRESHOLD_COLOUR,
    _panels,
    _recorded,
    _save,
    time_colour,
)
from studyrunner.report.formatting import (
    ci_label,
    fmt_auc,
    fmt_int,
    fmt_median_iqr,
    fmt_missing,
    fmt_num,
    fmt_p_eq,
)

import matplotlib.pyplot as plt  # noqa: E402  (figures chose the Agg backend)
from matplotlib.cm import ScalarMappable  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402

COHORT_LABELS = {"training": "Training cohort", "test": "Test cohort"}
MAP_ORDER = ("osrs", "pfsrs", "prs", "pds")
LUNG_WINDOW = (-600.0, 1500.0)  # level, width in HU
MAP_CMAP = "jet"
MAP_ALPHA = 0.45
UNIT_WORDS = ("mm", "cm", "ml", "hu", "days", "months", "years")


def score_label(results: Mapping[str, Any], name: str) -> str:
    """Display name of a CNN score ("OSRS", "PRS", ...) as recorded in risk_scores."""
    section = results.get("risk_scores") or {}
    block = (section.get("scores") or {}).get(name) or (section.get("response") or {}).get(name) or {}
    return block.get("label") or name.upper()


def column_label(column: str) -> str:
    """A clinical column name for display: "slice_thickness_mm" -> "Slice thickness (mm)"."""
    words = column.split("_")
    unit = words.pop() if len(words) > 1 and words[-1].lower() in UNIT_WORDS else None
    text = " ".join(words).capitalize()
    return f"{text} ({unit})" if unit else text


def level_label(level: Any) -> str:
    """A subgroup level for display, with typographic comparison signs."""
    return str(level).replace("<=", "\u2264").replace(">=", "\u2265")


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
        fig, axes = _panels(len(names), height=3.55)
        fig.subplots_adjust(left=0.09, right=0.98, top=0.92, bottom=0.33, wspace=0.3)
        for ax, name in zip(axes, names):
            by_cohort = response[name].get("by_cohort") or {}
            ax.plot([0, 1], [0, 1], color="#999999", lw=0.7, ls="--")
            for i, cohort in enumerate(c for c in ("training", "test") if by_cohort.get(c)):
                block = by_cohort[cohort]
                curve = block.get("curve") or {}
                if not curve.get("fpr"):
                    continue
                auc = fmt_auc(block.get("auc"), block.get("auc_lower"), block.get("auc_upper"),
                              reason=block.get("cutoff_reason"))
                ax.plot(curve["fpr"], curve["tpr"], color=time_colour(2 * i), lw=1.2,
                        label=f"{COHORT_LABELS[cohort]} (n = {fmt_int(block.get('n'))}): AUC {auc}")
            point = youden_point(by_cohort.get("training") or {})
            if point is not None:
                ax.plot(*point, "D", color="#1a1a1a", ms=4.5, zorder=4,
                        label=f"Training Youden cut-off {fmt_num(by_cohort['training'].get('cutoff'), 3)}")
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1.01)
            ax.set_aspect("equal")
            ax.set_xlabel("1 \u2212 specificity")
            ax.set_ylabel("Sensitivity")
            outcome = response[name].get("outcome")
            ax.set_title(score_label(results, name) + (f": {outcome}" if outcome else ""), loc="left")
            ax.legend(loc="upper left", bbox_to_anchor=(-0.2, -0.2), title=f"AUC ({ci_label()})",
                      title_fontsize=FONT_SIZE - 1, fontsize=FONT_SIZE - 1.5, alignment="left")
        return _save(fig, path)


# --------------------------------------------------------------------------- subgroup AUCs


def response_subgroup_rows(subgroups: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows of the subgroup AUC plot: a heading per column, then one row per level
    {"label", "heading", "auc", "lower", "upper", "n", "reason"}."""
    rows: list[dict[str, Any]] = []
    for column, record in subgroups.items():
        if not record or not record.get("table"):
            continue
        rows.append({"label": column_label(column), "heading": True})
        for entry in record["table"]:
            rows.append({"label": level_label(entry.get("subgroup")), "heading": False, "auc": entry.get("auc"),
                         "lower": entry.get("auc_lower"), "upper": entry.get("auc_upper"), "n": entry.get("n"),
                         "reason": entry.get("reason")})
    return rows


def draw_response_subgroups(results: Mapping[str, Any], names: Sequence[str], path: Path) -> Path:
    """AUC with its CI within each subgroup level, one panel per score (stacked)."""
    response = results["risk_scores"]["response"]
    tables = {name: response_subgroup_rows(response[name].get("subgroups") or {}) for name in names}
    row_h, head_h = 0.19, 0.42
    heights = [len(rows) * row_h + head_h for rows in tables.values()]
    with plt.rc_context(STYLE):
        fig = plt.figure(figsize=(TEXT_WIDTH_IN, sum(heights) + 0.45))
        grid = fig.add_gridspec(len(names), 1, height_ratios=heights, left=0.3, right=0.68, top=0.97,
                                bottom=0.4 / (sum(heights) + 0.45), hspace=0.45)
        for k, name in enumerate(names):
            ax = fig.add_subplot(grid[k])
            rows = tables[name]
            ax.axvline(0.5, color="#999999", lw=0.7, ls="--")
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
                ax.text(1.03, i, text, transform=ax.get_yaxis_transform(), ha="left", va="center",
                        fontsize=FONT_SIZE - 0.5)
            ax.set_yticks(range(len(rows)))
            ax.set_yticklabels([r["label"] if r["heading"] else f"   {r['label']}" for r in rows])
            for label, row in zip(ax.get_yticklabels(), rows):
                label.set_fontweight("bold" if row["heading"] else "normal")
            ax.tick_params(axis="y", left=False)
            ax.set_ylim(len(rows) - 0.5, -0.5)
            ax.set_xlim(0, 1)
            ax.set_title(score_label(results, name), loc="left")
            ax.text(1.03, -1.0, f"AUC ({ci_label()})", transform=ax.get_yaxis_transform(), ha="left",
                    va="center", fontweight="bold")
            if k == len(names) - 1:
                ax.set_xlabel("Area under the ROC curve")
        return _save(fig, path)


# --------------------------------------------------------------------------- Grad-CAM


def lung_window(hu: np.ndarray, level: float = LUNG_WINDOW[0], width: float = LUNG_WINDOW[1]) -> np.ndarray:
    """CT values in HU mapped to [0, 1] grey levels through a window (lung: level -600, width 1500)."""
    return np.clip((np.asarray(hu, dtype=float) - (level - width / 2)) / width, 0.0, 1.0)


def gradcam_cells(explanations: Mapping[str, Any], overlays: Mapping[str, np.ndarray],
                  plane: str = "axial") -> list[dict[str, Any]]:
    """Per selected patient: {"patient_id", "scores", "ct", "maps": {score: slice}} of the
    patients whose CT slice is in the overlays (maps in ``MAP_ORDER``, those present)."""
    cells = []
    for patient in explanations.get("selected") or []:
        pid = patient["patient_id"]
        if f"{pid}/ct/{plane}" not in overlays:
            continue
        maps = {name: np.asarray(overlays[f"{pid}/{name}/{plane}"]) for name in MAP_ORDER
                if f"{pid}/{name}/{plane}" in overlays}
        cells.append({"patient_id": pid, "scores": patient, "ct": np.asarray(overlays[f"{pid}/ct/{plane}"]),
                      "maps": maps})
    return cells


def draw_gradcam(results: Mapping[str, Any], cells: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """One row per selected patient: the CT mid-slice in a lung window, then each score's
    Grad-CAM map over the CT; the row is labelled with the patient and its fused score."""
    names = [n for n in MAP_ORDER if any(n in c["maps"] for c in cells)]
    order_by = (cells[0]["scores"].get("ordered_by") if cells else None) or "mosrs"
    cell_in, label_in, bar_in = 0.95, 0.95, 0.75
    n_cols = 1 + len(names)
    width = label_in + n_cols * (cell_in + 0.05) + bar_in
    fig_h = 0.3 + len(cells) * (cell_in + 0.08) + 0.1
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(len(cells), n_cols, figsize=(min(width, TEXT_WIDTH_IN), fig_h), squeeze=False)
        fig.subplots_adjust(left=label_in / width, right=1 - bar_in / width, top=1 - 0.3 / fig_h,
                            bottom=0.1 / fig_h, wspace=0.05, hspace=0.08)
        for r, cell in enumerate(cells):
            ct = lung_window(cell["ct"])
            for c, name in enumerate([None, *names]):
                ax = axes[r][c]
                ax.imshow(ct, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
                if name is not None and name in cell["maps"]:
                    ax.imshow(cell["maps"][name], cmap=MAP_CMAP, vmin=0, vmax=1, alpha=MAP_ALPHA,
                              interpolation="bilinear")
                ax.set_xticks([])
                ax.set_yticks([])
                if r == 0:
                    ax.set_title("CT (lung window)" if name is None else score_label(results, name),
                                 fontsize=FONT_SIZE)
            value = cell["scores"].get(order_by)
            axes[r][0].set_ylabel(f"{cell['patient_id']}\n{score_label(results, order_by)} {fmt_num(value, 2)}",
                                  fontsize=FONT_SIZE - 0.5)
        bar = fig.colorbar(ScalarMappable(Normalize(0, 1), MAP_CMAP), ax=axes.ravel().tolist(), fraction=0.04,
                           pad=0.03)
        bar.set_label("Grad-CAM (scaled to 0\u20131)")
        bar.set_ticks([0, 0.5, 1])
        bar.set_ticklabels([fmt_num(v, 1) for v in (0, 0.5, 1)])
        return _save(fig, path)


# --------------------------------------------------------------------------- SSIM and Spearman


def spearman_rows(explanations: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The Spearman rows with an estimate, in recorded order: [{"name", "rho", "p", "n"}]."""
    return [row for row in explanations.get("spearman") or []
            if row.get("rho") is not None and not math.isnan(float(row["rho"]))]


def draw_ssim_spearman(results: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Spearman's rho (bars, with p) between each patient's OSRS-PFSRS map SSIM and each score;
    the SSIM median (IQR) per cohort is noted under the title."""
    explanations = results["explanations"]
    ssim = explanations.get("ssim") or {}
    pair = " and ".join(score_label(results, n) for n in ssim.get("pair") or ["osrs", "pfsrs"])
    notes = [f"{COHORT_LABELS.get(c, c)}: median (IQR) {fmt_median_iqr(s, digits=2)}, n = {fmt_int(s.get('n'))}"
             for c, s in (ssim.get("by_cohort") or {}).items() if s]
    top_in = 0.55 + 0.15 * len(notes)
    fig_h = top_in + 0.24 * len(rows) + 0.45
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(TEXT_WIDTH_IN, fig_h))
        fig.subplots_adjust(left=0.14, right=0.7, top=1 - top_in / fig_h, bottom=0.45 / fig_h)
        ys = list(range(len(rows)))
        rhos = [float(r["rho"]) for r in rows]
        colours = [THRESHOLD_COLOUR if r.get("p") is not None and r["p"] < 0.05 else NEUTRAL for r in rows]
        ax.barh(ys, rhos, height=0.6, color=colours)
        ax.axvline(0, color="#333333", lw=0.6)
        for y, row in zip(ys, rows):
            ax.text(1.03, y, f"\u03c1 = {fmt_num(row['rho'], 2)}, {fmt_p_eq(row.get('p'))}, n = {fmt_int(row.get('n'))}",
                    transform=ax.get_yaxis_transform(), ha="left", va="center")
        ax.set_yticks(ys)
        ax.set_yticklabels([score_label(results, r["name"]) for r in rows])
        ax.set_ylim(len(rows) - 0.5, -0.5)
        ax.set_xlim(-1, 1)
        ax.set_xlabel(f"Spearman's \u03c1 with the SSIM of the {pair} maps (red: p < {fmt_num(0.05, 2)})")
        fig.text(0.01, 1 - 0.08 / fig_h, f"Structural similarity (SSIM) of the {pair} Grad-CAM maps",
                 ha="left", va="top", fontweight="bold", fontsize=FONT_SIZE + 0.5)
        fig.text(0.01, 1 - 0.3 / fig_h, "\n".join(notes), ha="left", va="top", color="#444444",
                 fontsize=FONT_SIZE - 0.5, linespacing=1.4)
        return _save(fig, path)


def draw_response_figures(results: Mapping[str, Any], figures_dir: Path, run_dir: Path) -> dict[str, Path]:
    """The PRS/PDS and Grad-CAM figures that results.json has data for.

    Keys: "response_roc", "response_subgroups", "gradcam", "ssim_spearman"."""
    figures: dict[str, Path] = {}
    response = (results.get("risk_scores") or {}).get("response") or {}
    with_roc = [n for n in ("prs", "pds") if _recorded(response.get(n))
                and any((b or {}).get("curve") for b in (response[n].get("by_cohort") or {}).values())]
    if with_roc:
        figures["response_roc"] = draw_response_roc(results, with_roc, figures_dir / "response_roc.png")
    with_sub = [n for n in ("prs", "pds") if _recorded(response.get(n))
                and response_subgroup_rows(response[n].get("subgroups") or {})]
    if with_sub:
        figures["response_subgroups"] = draw_response_subgroups(results, with_sub,
                                                                figures_dir / "response_subgroups.png")
    explanations = results.get("explanations")
    if not _recorded(explanations):
        return figures
    overlays_file = explanations.get("overlays_file")
    if overlays_file and (run_dir / overlays_file).is_file():
        with np.load(run_dir / overlays_file) as overlays:
            cells = gradcam_cells(explanations, overlays)
        if cells:
            figures["gradcam"] = draw_gradcam(results, cells, figures_dir / "gradcam.png")
    rows = spearman_rows(explanations)
    if rows:
        figures["ssim_spearman"] = draw_ssim_spearman(results, rows, figures_dir / "ssim_spearman.png")
    return figures
