"""Figures of the seed-000 Grad-CAM maps (He et al., Transl Lung Cancer Res 2022;11(4):670-685).

Grad-CAM overlays (Selvaraju et al., ICCV 2017) of every score on the CT (Figure 5), and the
Spearman correlation of the SSIM (Wang et al., IEEE TIP 2004;13:600-612) between each
patient's maps of the two endpoint scores (OSRS and PFSRS in the paper) with every score (Figure 6).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize

from studyrunner.report.figures.labels import cohort_label, score_label
from studyrunner.report.figures.style import (
    FONT_SIZE,
    NEUTRAL,
    STYLE,
    TEXT_WIDTH_IN,
    THRESHOLD_COLOUR,
    hide_spines,
    save,
    tick_formatter,
)
from studyrunner.report.formatting import fmt_int, fmt_median_iqr, fmt_num, fmt_p_eq
from studyrunner.results.models import Explanations, Results, RiskScores, SpearmanRow

LUNG_WINDOW = (-600.0, 1500.0)  # level, width in HU
MAP_CMAP = "jet"
MAP_ALPHA = 0.45


# --------------------------------------------------------------------------- Grad-CAM


def lung_window(hu: np.ndarray, level: float = LUNG_WINDOW[0], width: float = LUNG_WINDOW[1]) -> np.ndarray:
    """CT values in HU mapped to [0, 1] grey levels through a window (lung: level -600, width 1500)."""
    return np.clip((np.asarray(hu, dtype=float) - (level - width / 2)) / width, 0.0, 1.0)


def gradcam_cells(explanations: Explanations, overlays: Mapping[str, np.ndarray],
                  plane: str = "axial") -> list[dict[str, Any]]:
    """Per selected patient: {"patient_id", "scores" (its ``SelectedPatient`` record), "ct",
    "maps": {score: slice}} of the patients whose CT slice is in the overlays (maps in the
    order of ``scores_explained``, those present)."""
    cells = []
    for patient in explanations.selected:
        pid = patient.patient_id
        if f"{pid}/ct/{plane}" not in overlays:
            continue
        maps = {name: np.asarray(overlays[f"{pid}/{name}/{plane}"]) for name in explanations.scores_explained
                if f"{pid}/{name}/{plane}" in overlays}
        cells.append({"patient_id": pid, "scores": patient, "ct": np.asarray(overlays[f"{pid}/ct/{plane}"]),
                      "maps": maps})
    return cells


def draw_gradcam(risk: RiskScores | None, names: Sequence[str], cells: Sequence[Mapping[str, Any]],
                 path: Path) -> Path:
    """One row per selected patient: the CT mid-slice in a lung window, then each score's
    Grad-CAM map over the CT (``names``: the explained scores in order); the row is labelled
    with the patient and the score the patients were chosen by."""
    names = [n for n in names if any(n in c["maps"] for c in cells)]
    order_by = cells[0]["scores"].ordered_by if cells else ""
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
                hide_spines(ax)
                if r == 0:
                    ax.set_title("CT (lung window)" if name is None else score_label(risk, name),
                                 fontsize=FONT_SIZE)
            value = cell["scores"].score(order_by)
            axes[r][0].set_ylabel(f"{cell['patient_id']}\n{score_label(risk, order_by)} {fmt_num(value, 2)}",
                                  fontsize=FONT_SIZE - 0.5, rotation=0, ha="right", va="center", labelpad=4)
        bar = fig.colorbar(ScalarMappable(Normalize(0, 1), MAP_CMAP), ax=axes.ravel().tolist(), fraction=0.04,
                           pad=0.03)
        bar.set_label("Grad-CAM (scaled to 0\u20131)")
        bar.set_ticks([0, 0.5, 1])
        bar.set_ticklabels([fmt_num(v, 1) for v in (0, 0.5, 1)])
        return save(fig, path)


# --------------------------------------------------------------------------- SSIM and Spearman


def spearman_rows(explanations: Explanations) -> list[SpearmanRow]:
    """The Spearman rows with an estimate, in recorded order."""
    return [row for row in explanations.spearman if row.rho is not None and not math.isnan(row.rho)]


def draw_ssim_spearman(risk: RiskScores | None, explanations: Explanations, rows: Sequence[SpearmanRow],
                       path: Path) -> Path:
    """Spearman's rho (bars, with p) between each patient's SSIM of the two endpoint scores'
    maps (``ssim.pair``) and each score; the SSIM median (IQR) per cohort is noted under the title."""
    ssim = explanations.ssim
    pair = " and ".join(score_label(risk, n) for n in (ssim.pair if ssim is not None else []))
    notes = [f"{cohort_label(c)}: SSIM median (IQR) {fmt_median_iqr(s, digits=2)}, n = {fmt_int(s.n)}"
             for c, s in (ssim.by_cohort if ssim is not None else {}).items()]
    top_in = 0.55 + 0.15 * len(notes)
    fig_h = top_in + 0.24 * len(rows) + 0.45
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(TEXT_WIDTH_IN, fig_h))
        fig.subplots_adjust(left=0.14, right=0.7, top=1 - top_in / fig_h, bottom=0.45 / fig_h)
        ys = list(range(len(rows)))
        rhos = [float(r.rho) if r.rho is not None else math.nan for r in rows]
        colours = [THRESHOLD_COLOUR if r.p is not None and r.p < 0.05 else NEUTRAL for r in rows]
        ax.barh(ys, rhos, height=0.6, color=colours)
        ax.axvline(0, color="#333333", lw=0.6)
        for y, row in zip(ys, rows, strict=True):
            text = f"\u03c1 = {fmt_num(row.rho, 2)}, {fmt_p_eq(row.p)}, n = {fmt_int(row.n)}"
            ax.text(1.03, y, text, transform=ax.get_yaxis_transform(), ha="left", va="center")
        ax.set_yticks(ys)
        ax.set_yticklabels([score_label(risk, r.name) for r in rows])
        ax.set_ylim(len(rows) - 0.5, -0.5)
        ax.set_xlim(-1, 1)
        ax.set_xticks([-1, -0.5, 0, 0.5, 1])
        ax.xaxis.set_major_formatter(tick_formatter(1))
        ax.set_xlabel(f"Spearman's \u03c1 with the SSIM of the {pair} maps (red: p < {fmt_num(0.05, 2)})")
        fig.text(0.01, 1 - 0.08 / fig_h, f"Structural similarity (SSIM) of the {pair} Grad-CAM maps",
                 ha="left", va="top", fontweight="bold", fontsize=FONT_SIZE + 0.5)
        fig.text(0.01, 1 - 0.3 / fig_h, "\n".join(notes), ha="left", va="top", color="#444444",
                 fontsize=FONT_SIZE - 0.5, linespacing=1.4)
        return save(fig, path)


# --------------------------------------------------------------------------- entry point


def draw_explanation_figures(results: Results, figures_dir: Path, run_dir: Path) -> dict[str, Path]:
    """The Grad-CAM and SSIM figures that results.json has data for; the Grad-CAM slices are
    read from the run's overlays file. Keys: "gradcam", "ssim_spearman"."""
    figures: dict[str, Path] = {}
    explanations, risk = results.explanations, results.risk_scores
    if explanations is None:
        return figures
    overlays_file = explanations.overlays_file
    if overlays_file and (run_dir / overlays_file).is_file():
        with np.load(run_dir / overlays_file) as overlays:
            cells = gradcam_cells(explanations, overlays)
        if cells:
            figures["gradcam"] = draw_gradcam(risk, explanations.scores_explained, cells, figures_dir / "gradcam.png")
    rows = spearman_rows(explanations)
    if rows:
        figures["ssim_spearman"] = draw_ssim_spearman(risk, explanations, rows, figures_dir / "ssim_spearman.png")
    return figures
