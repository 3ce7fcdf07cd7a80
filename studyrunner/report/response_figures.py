"""Report figures of the seed-000 response scores and Grad-CAM maps, drawn from results.json.

Seed 000 (He et al., Transl Lung Cancer Res 2022;11(4):670-685): ROC curves of the dual-task
network's partial-response score (PRS) and progressive-disease score (PDS) with the AUC and
its DeLong 95% CI (DeLong, DeLong & Clarke-Pearson, Biometrics 1988;44:837-845) and the
training cohort's Youden cut-off (Youden, Cancer 1950;3:32-35); the AUC within subgroups;
Kaplan-Meier curves of the groups split at the response scores' training cut-offs; Grad-CAM
overlays (Selvaraju et al., ICCV 2017) of every score on the CT (Figure 5); and the Spearman
correlation of the SSIM (Wang et al., IEEE TIP 2004;13:600-612) between each patient's OSRS
and PFSRS maps with every score (Figure 6).

Style, sizes and number formatting follow ``studyrunner.report.figures``. Small Kaplan-Meier
panels (``draw_km_panels``, also used for the subgroup figures) keep ``figures.draw_km``'s
curves, 95% bands, log-rank p, hazard ratio and numbers at risk (Pocock, Clayton & Altman,
Lancet 2002;359:1686-1689) in a fraction of its size.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from studyrunner.report.figures import (
    FONT_SIZE,
    GROUP_COLOURS,
    NEUTRAL,
    STYLE,
    TEXT_WIDTH_IN,
    THRESHOLD_COLOUR,
    _from_zero,
    _panels,
    roc_axes,
    _recorded,
    _risk_table,
    _save,
    time_colour,
)
from studyrunner.report.formatting import (
    ci_label,
    fmt_auc,
    fmt_hr,
    fmt_int,
    fmt_median_iqr,
    fmt_missing,
    fmt_num,
    fmt_p_eq,
)

import matplotlib.pyplot as plt  # noqa: E402  (figures chose the Agg backend)
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.cm import ScalarMappable  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402
from matplotlib.transforms import blended_transform_factory  # noqa: E402

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


def tick_formatter(digits: int) -> FuncFormatter:
    """Axis tick labels through ``fmt_num`` with ``digits`` decimals."""
    return FuncFormatter(lambda v, _: fmt_num(v, digits))


def level_label(level: Any) -> str:
    """A subgroup level for display, with typographic comparison signs."""
    return str(level).replace("<=", "\u2264").replace(">=", "\u2265")


# --------------------------------------------------------------------------- small Kaplan-Meier panels


def km_note(block: Mapping[str, Any], width: int = 32) -> str:
    """The log-rank p and the hazard ratio (high vs low) of a small panel, wrapped to ``width``."""
    hr, reason = block.get("hr"), block.get("hr_reason")
    label = f"HR ({reason})" if reason and hr is not None else "HR (high vs low)"
    hr_text = fmt_hr(hr, block.get("hr_lower"), block.get("hr_upper"), reason=reason)
    return "\n".join([f"Log-rank {fmt_p_eq(block.get('logrank_p'))}", *textwrap.wrap(f"{label} {hr_text}", width)])


def _km_panel(fig: Figure, spec: Any, block: Mapping[str, Any], labels: Mapping[str, str], title: str,
              unit: str, first: bool, wrap: int) -> Axes:
    """A small Kaplan-Meier panel: curves with 95% bands; under them the group sizes, log-rank
    p and HR, then the numbers at risk."""
    inner = spec.subgridspec(3, 1, height_ratios=[3.2, 1.3, 1.0], hspace=0.4)
    ax = fig.add_subplot(inner[0])
    km, risk = block.get("km") or {}, block.get("risk_table") or {}
    groups = block.get("groups") or {}
    ax.set_title(title, loc="left", fontsize=FONT_SIZE - 0.5)
    if not km:
        ax.axis("off")
        ax.text(0.0, 0.85, "\n".join(["Not evaluated:", *textwrap.wrap(block.get("reason") or "no curves", wrap)]),
                ha="left", va="top", transform=ax.transAxes, fontsize=FONT_SIZE - 1, color="#444444")
        return ax
    times = [float(t) for t in risk.get("times") or []]
    for g in [g for g in ("low", "high") if g in km]:
        t, s = _from_zero(km[g]["time"], km[g]["surv"])
        n = (groups.get(g) or {}).get("n")
        ax.step(t, s, where="post", color=GROUP_COLOURS[g], lw=1.1, label=f"{labels[g]} (n = {fmt_int(n)})")
        if km[g].get("lower") and km[g].get("upper"):
            ax.fill_between(t, _from_zero(km[g]["time"], km[g]["lower"])[1], _from_zero(km[g]["time"], km[g]["upper"])[1],
                            step="post", color=GROUP_COLOURS[g], alpha=0.13, linewidth=0)
    ax.set_ylim(0, 1.03)
    ax.set_xlim(0, max(times + [1.0]) * 1.02)
    if times:
        ax.set_xticks(times)
    ax.xaxis.set_major_formatter(tick_formatter(0))
    ax.yaxis.set_major_formatter(tick_formatter(1))
    ax.tick_params(labelsize=FONT_SIZE - 1.5)
    ax.set_xlabel(f"Time ({unit})", fontsize=FONT_SIZE - 1)
    note = fig.add_subplot(inner[1])
    note.axis("off")
    note.legend(*ax.get_legend_handles_labels(), loc="upper left", bbox_to_anchor=(-0.03, 0.92), title=km_note(block, wrap),
                fontsize=FONT_SIZE - 1.5, title_fontsize=FONT_SIZE - 1.5, handlelength=1.2, alignment="left",
                labelspacing=0.2, borderpad=0.1)
    rows = [g for g in ("low", "high") if g in risk]
    if rows and times:
        table = fig.add_subplot(inner[2])
        table.set_xlim(ax.get_xlim())
        _risk_table(table, risk, rows, times)
        table.set_yticklabels([labels[g] for g in rows])
        for tick, g in zip(table.get_yticklabels(), rows):
            tick.set_color(GROUP_COLOURS[g])
        for text in table.texts:
            text.set_fontsize(FONT_SIZE - 2)
        table.tick_params(axis="y", labelleft=first, labelsize=FONT_SIZE - 2)
    return ax


def draw_km_panels(panels: Sequence[tuple[str, Mapping[str, Any], Mapping[str, str]]], endpoint: Mapping[str, Any],
                   heading: str, path: Path, columns: int = 3) -> Path:
    """Small Kaplan-Meier panels in rows of ``columns``: (title, groups_by_cutpoint-shaped block, group labels)."""
    n_rows = math.ceil(len(panels) / columns)
    n_cols = min(columns, len(panels))
    fig_h = 0.35 + 3.3 * n_rows
    with plt.rc_context(STYLE):
        fig = plt.figure(figsize=(TEXT_WIDTH_IN, fig_h))
        grid = fig.add_gridspec(n_rows, n_cols, left=0.13 if n_cols > 1 else 0.2, right=0.98,
                                top=1 - 0.5 / fig_h, bottom=0.1 / fig_h, hspace=0.35,
                                wspace=0.3 if all(p[2] == panels[0][2] for p in panels) else 0.55)
        unit = endpoint.get("unit") or "days"
        for k, (title, block, labels) in enumerate(panels):
            first = k % n_cols == 0 or labels != panels[k - 1][2]
            ax = _km_panel(fig, grid[k // n_cols, k % n_cols], block, labels, title, unit, first,
                           wrap=int(0.8 * TEXT_WIDTH_IN / n_cols / 0.055))
            if k % n_cols == 0:
                ax.set_ylabel(f"{endpoint.get('label', 'Survival')} probability", fontsize=FONT_SIZE - 1)
        fig.text(0.01, 1 - 0.06 / fig_h, heading, ha="left", va="top", fontweight="bold")
        fig.text(0.99, 1 - 0.06 / fig_h, f"{ci_label()} shaded", ha="right", va="top", fontsize=FONT_SIZE - 1, color="#444444")
        return _save(fig, path)


def response_km_panels(results: Mapping[str, Any], endpoint: str) -> list[tuple[str, Mapping[str, Any], Mapping[str, str]]]:
    """One panel per response score with a stratification for ``endpoint`` (low: score <= cut-off)."""
    response = (results.get("risk_scores") or {}).get("response") or {}
    panels = []
    for name in ("prs", "pds"):
        block = ((response.get(name) or {}).get("stratification") or {}).get(endpoint)
        if block and block.get("km"):
            label, cut = score_label(results, name), fmt_num(block.get("cutpoint"), 3)
            panels.append((f"{label}\ntraining cut-off {cut}", block,
                           {"low": f"{label} \u2264 {cut}", "high": f"{label} > {cut}"}))
    return panels


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
            roc_axes(ax)
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
    row_h, gap_h = 0.19, 0.5
    heights = [len(rows) * row_h for rows in tables.values()]
    fig_h = sum(heights) + gap_h * len(names) + 0.4
    with plt.rc_context(STYLE):
        fig = plt.figure(figsize=(TEXT_WIDTH_IN, fig_h))
        grid = fig.add_gridspec(len(names), 1, height_ratios=heights, left=0.34, right=0.68, top=1 - 0.3 / fig_h,
                                bottom=0.4 / fig_h, hspace=gap_h / (sum(heights) / len(names)))
        for k, name in enumerate(names):
            ax = fig.add_subplot(grid[k])
            rows = tables[name]
            labels = blended_transform_factory(fig.transFigure, ax.transData)
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
            for i, row in enumerate(rows):
                ax.text(0.01 if row["heading"] else 0.03, i, row["label"], transform=labels, ha="left", va="center",
                        fontweight="bold" if row["heading"] else "normal")
            ax.set_yticks([])
            ax.set_ylim(len(rows) - 0.5, -0.5)
            ax.set_xlim(0, 1)
            outcome = response[name].get("outcome")
            ax.set_title(score_label(results, name) + (f": {outcome}" if outcome else ""), loc="left")
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
                for spine in ax.spines.values():
                    spine.set_visible(False)
                if r == 0:
                    ax.set_title("CT (lung window)" if name is None else score_label(results, name),
                                 fontsize=FONT_SIZE)
            value = cell["scores"].get(order_by)
            axes[r][0].set_ylabel(f"{cell['patient_id']}\n{score_label(results, order_by)} {fmt_num(value, 2)}",
                                  fontsize=FONT_SIZE - 0.5, rotation=0, ha="right", va="center", labelpad=4)
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
    notes = [f"{COHORT_LABELS.get(c, c)}: SSIM median (IQR) {fmt_median_iqr(s, digits=2)}, n = {fmt_int(s.get('n'))}"
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
        ax.set_xticks([-1, -0.5, 0, 0.5, 1])
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt_num(v, 1)))
        ax.set_xlabel(f"Spearman's \u03c1 with the SSIM of the {pair} maps (red: p < {fmt_num(0.05, 2)})")
        fig.text(0.01, 1 - 0.08 / fig_h, f"Structural similarity (SSIM) of the {pair} Grad-CAM maps",
                 ha="left", va="top", fontweight="bold", fontsize=FONT_SIZE + 0.5)
        fig.text(0.01, 1 - 0.3 / fig_h, "\n".join(notes), ha="left", va="top", color="#444444",
                 fontsize=FONT_SIZE - 0.5, linespacing=1.4)
        return _save(fig, path)


def draw_response_figures(results: Mapping[str, Any], figures_dir: Path, run_dir: Path) -> dict[str, Path]:
    """The PRS/PDS and Grad-CAM figures that results.json has data for.

    Keys: "response_km_os", "response_km_pfs", "response_roc", "response_subgroups", "gradcam", "ssim_spearman"."""
    figures: dict[str, Path] = {}
    response = (results.get("risk_scores") or {}).get("response") or {}
    for name in ("os", "pfs"):
        panels = response_km_panels(results, name)
        if panels:
            endpoint = (results.get("endpoints") or {}).get(name) or {}
            figures[f"response_km_{name}"] = draw_km_panels(
                panels, endpoint, f"{endpoint.get('label', 'Survival')} by the response scores (all patients)",
                figures_dir / f"response_km_{name}.png", columns=2)
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
