"""The feature sets chosen by the learners of a radiomics-signature study: a Venn diagram for
two or three sets, otherwise an UpSet plot (Lex, Gehlenborg, Strobelt, Vuillemot & Pfister,
IEEE TVCG 2014;20:1983–1992). Features of the combination rule's result are shown in red."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from studyrunner.registry import learner_label
from studyrunner.report.figures.style import (
    FONT_SIZE,
    NEUTRAL,
    STYLE,
    TEXT_WIDTH_IN,
    THRESHOLD_COLOUR,
    TIME_COLOURS,
    hide_spines,
    save,
)
from studyrunner.report.formatting import fmt_int
from studyrunner.results.models import Selection

Intersections = list[tuple[tuple[str, ...], list[str]]]

MAX_UPSET_COLUMNS = 24
UPSET_ROW_H_IN, UPSET_BARS_H_IN = 0.19, 1.35
UPSET_LEFT_IN, UPSET_SIZES_W_IN, UPSET_LABEL_W_IN = 0.05, 0.85, 1.6
OTHER_SET_COLOUR = "#333333"
# centres of the two- and three-set Venn diagrams (unit circles)
VENN_CENTRES = {2: ((-0.55, 0.0), (0.55, 0.0)), 3: ((-0.55, 0.35), (0.55, 0.35), (0.0, -0.6))}


def learner_sets(selection: Selection) -> dict[str, list[str]]:
    """The feature sets of the learners that ran (a learner with an error is left out), in recorded order."""
    return {name: list(choice.features) for name, choice in selection.learners.items() if not choice.error}


def set_intersections(sets: Mapping[str, Sequence[str]]) -> Intersections:
    """Exclusive intersections for an UpSet plot: each feature counted once, under exactly the
    learners that chose it. Returns [(learners, features)], largest first (ties: more learners
    first, then the learners' order)."""
    order = list(sets)
    members: dict[str, list[str]] = {}
    for name in order:
        for feature in sets[name]:
            members.setdefault(feature, [])
            if name not in members[feature]:
                members[feature].append(name)
    groups: dict[tuple[str, ...], list[str]] = {}
    for feature, names in members.items():
        groups.setdefault(tuple(n for n in order if n in names), []).append(feature)
    return sorted(groups.items(), key=lambda kv: (-len(kv[1]), -len(kv[0]), [order.index(n) for n in kv[0]]))


def uses_venn(n_sets: int) -> bool:
    """Two or three sets are drawn as a Venn diagram, other numbers as an UpSet plot."""
    return 2 <= n_sets <= len(VENN_CENTRES) + 1


def draw_learner_sets(selection: Selection, path: Path) -> Path:
    """The learners' selected feature sets: a Venn diagram for two or three sets, an UpSet plot otherwise.

    Features in ``combined`` (the combination rule's result) are highlighted in red."""
    sets = learner_sets(selection)
    combined = set(selection.combined)
    with plt.rc_context(STYLE):
        fig = venn(sets, combined) if uses_venn(len(sets)) else upset(sets, combined)
        return save(fig, path)


def _colour(features: Sequence[str], combined: set[str], other: str) -> str:
    """Red for an intersection holding a combined feature, ``other`` otherwise."""
    return THRESHOLD_COLOUR if set(features) & combined else other


# --------------------------------------------------------------------------- UpSet


def upset(sets: Mapping[str, Sequence[str]], combined: set[str]) -> Figure:
    """UpSet plot: intersection sizes (bars) over the membership matrix, set sizes on the left;
    beyond ``MAX_UPSET_COLUMNS`` intersections the smallest are left out and counted in a note."""
    names = list(sets)
    columns = set_intersections(sets)
    shown, hidden = columns[:MAX_UPSET_COLUMNS], columns[MAX_UPSET_COLUMNS:]
    fig_h = 0.25 + UPSET_BARS_H_IN + UPSET_ROW_H_IN * len(names) + 0.45
    fig, ax_bar, ax_mat, ax_size = _upset_axes(len(names), max(len(shown), 1), fig_h)
    colours = [_colour(features, combined, OTHER_SET_COLOUR) for _, features in shown]
    _intersection_bars(ax_bar, shown, colours)
    _membership_matrix(ax_mat, names, shown, colours)
    _set_sizes(ax_size, sets)
    _upset_notes(fig, fig_h, bool(combined), hidden)
    return fig


def _upset_axes(n_rows: int, n_cols: int, fig_h: float) -> tuple[Figure, Axes, Axes, Axes]:
    """The figure and its intersection-bar, matrix and set-size axes, sized in inches."""
    fig = plt.figure(figsize=(TEXT_WIDTH_IN, fig_h))
    matrix_h = UPSET_ROW_H_IN * n_rows
    x0 = (UPSET_LEFT_IN + UPSET_SIZES_W_IN + UPSET_LABEL_W_IN) / TEXT_WIDTH_IN
    grid_bottom = 0.45 / fig_h
    matrix_top = grid_bottom + matrix_h / fig_h
    col_w = min(0.36, (TEXT_WIDTH_IN * (0.98 - x0)) / n_cols)
    width_frac = col_w * n_cols / TEXT_WIDTH_IN
    ax_bar = fig.add_axes((x0, matrix_top + 0.06 / fig_h, width_frac, UPSET_BARS_H_IN / fig_h))
    ax_mat = fig.add_axes((x0, grid_bottom, width_frac, matrix_h / fig_h), sharex=ax_bar)
    ax_size = fig.add_axes((UPSET_LEFT_IN / TEXT_WIDTH_IN, grid_bottom, UPSET_SIZES_W_IN / TEXT_WIDTH_IN,
                            matrix_h / fig_h), sharey=ax_mat)
    return fig, ax_bar, ax_mat, ax_size


def _intersection_bars(ax: Axes, columns: Intersections, colours: Sequence[str]) -> None:
    sizes = [len(features) for _, features in columns]
    ax.bar(range(len(columns)), sizes, width=0.6, color=colours)
    for i, size in enumerate(sizes):
        ax.text(i, size, fmt_int(size), ha="center", va="bottom", fontsize=FONT_SIZE - 1.5)
    ax.set_ylabel("Features in\nintersection")
    ax.tick_params(axis="x", bottom=False, labelbottom=False)
    ax.spines["bottom"].set_visible(False)
    ax.set_ylim(0, max([*sizes, 1]) * 1.18)


def _membership_matrix(ax: Axes, names: Sequence[str], columns: Intersections, colours: Sequence[str]) -> None:
    """One column per intersection: a dot per learner, filled and joined for its members."""
    n_rows = len(names)
    for r in range(n_rows):
        if r % 2 == 0:
            ax.axhspan(r - 0.5, r + 0.5, color="#f1f3f5", lw=0)
    for i, (members, _) in enumerate(columns):
        rows = [names.index(n) for n in members]
        ax.scatter([i] * n_rows, range(n_rows), s=14, color="#d5d9dd", zorder=2)
        ax.scatter([i] * len(rows), rows, s=16, color=colours[i], zorder=3)
        if len(rows) > 1:
            ax.plot([i, i], [min(rows), max(rows)], color=colours[i], lw=1.2, zorder=2)
    ax.set_xlim(-0.6, max(len(columns), 1) - 0.4)
    ax.set_ylim(n_rows - 0.5, -0.5)
    ax.set_yticks(range(n_rows))
    ax.set_yticklabels([learner_label(n) for n in names])
    ax.tick_params(axis="y", left=False, pad=4)
    ax.tick_params(axis="x", bottom=False, labelbottom=False)
    hide_spines(ax)


def _set_sizes(ax: Axes, sets: Mapping[str, Sequence[str]]) -> None:
    """Horizontal bars of the learners' set sizes, growing to the left."""
    names = list(sets)
    ax.barh(range(len(names)), [len(sets[n]) for n in names], height=0.55, color=NEUTRAL)
    for r, n in enumerate(names):
        ax.text(len(sets[n]), r, f"{fmt_int(len(sets[n]))} ", ha="right", va="center", color="white",
                fontsize=FONT_SIZE - 1.5)
    ax.invert_xaxis()
    ax.tick_params(axis="y", left=False, labelleft=False)
    ax.spines["left"].set_visible(False)
    ax.spines["right"].set_visible(True)
    ax.set_xlabel("Set size")


def _upset_notes(fig: Figure, fig_h: float, has_combined: bool, hidden: Intersections) -> None:
    notes = ["Red: contains the combined\nfeatures."] if has_combined else []
    if hidden:
        n_hidden = sum(len(features) for _, features in hidden)
        notes.append(f"Not shown: {fmt_int(len(hidden))} smaller\nintersections ({fmt_int(n_hidden)} features).")
    fig.text(UPSET_LEFT_IN / TEXT_WIDTH_IN, 1 - 0.3 / fig_h, "\n".join(notes), ha="left", va="top",
             fontsize=FONT_SIZE - 1, color="#444444", linespacing=1.4)


# --------------------------------------------------------------------------- Venn


def venn(sets: Mapping[str, Sequence[str]], combined: set[str]) -> Figure:
    """Venn diagram of two or three sets: the size of each exclusive intersection in its region."""
    names = list(sets)
    centres = VENN_CENTRES[len(names)]
    fig, ax = plt.subplots(figsize=(TEXT_WIDTH_IN, 2.9))
    ax.set_aspect("equal")
    ax.axis("off")
    for (x, y), colour in zip(centres, TIME_COLOURS, strict=False):
        ax.add_patch(Circle((x, y), 1.0, facecolor=colour, alpha=0.18, edgecolor=colour, lw=1.0))
    for (members, features) in set_intersections(sets):
        inside = [centres[names.index(n)] for n in members]
        outside = [centres[i] for i, n in enumerate(names) if n not in members]
        cx = sum(c[0] for c in inside) / len(inside)
        cy = sum(c[1] for c in inside) / len(inside)
        for ox, oy in outside:  # push the label away from the circles it is not in
            cx, cy = cx + 0.45 * (cx - ox), cy + 0.45 * (cy - oy)
        ax.text(cx, cy, fmt_int(len(features)), ha="center", va="center", fontsize=FONT_SIZE + 1,
                fontweight="bold", color=_colour(features, combined, "#1a1a1a"))
    for (x, y), n in zip(centres, names, strict=True):
        dy = 1.12 if y >= 0 else -1.12
        ax.text(x, y + dy, f"{learner_label(n)} (n = {fmt_int(len(sets[n]))})", ha="center",
                va="bottom" if dy > 0 else "top")
    ax.set_xlim(-2.4, 2.4)
    ax.set_ylim(-1.95, 1.7)
    return fig
