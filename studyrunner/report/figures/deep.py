"""Report figures of the seed-000 CNN risk-score study, drawn from results.json.

Seed 000 (He et al., Transl Lung Cancer Res 2022;11(4):670-685, Figures 2-6): the loss
curves of the survival and dual-task networks; the risk vectors of the patients with the
event in 3D, coloured by the time interval of the event (Figure 2A,B); Kaplan-Meier curves
of OSRS, PFSRS and MOSRS per cohort (Figures 2C,D and 3A,B, drawn by ``figures.km.draw_km``);
the patients sorted by MOSRS with their scores and their mis-ordered pairs (Figure 3C, the
"sorting errors" of Harrell's C, Harrell et al., Stat Med 1996;15:361-387); and MOSRS within
subgroups (Figure 4C,D), drawn as the small panels of ``figures.km_panels``. The clinical Cox
forest plot and nomogram are drawn by ``figures.clinical_cox``, the response-score figures
by ``figures.response`` and the Grad-CAM and SSIM figures by ``figures.explanations``;
``draw_deep_figures`` draws them all.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter, MaxNLocator

from studyrunner.deep.intervals import interval_labels
from studyrunner.protocol import TimeToEventEndpoint
from studyrunner.report.figures.clinical_cox import draw_forest, draw_nomogram, forest_rows, nomogram_rows
from studyrunner.report.figures.explanations import draw_explanation_figures
from studyrunner.report.figures.km import draw_km
from studyrunner.report.figures.km_panels import Panel, draw_km_panels
from studyrunner.report.figures.labels import cohort_label, column_label, level_label, score_colours, score_label
from studyrunner.report.figures.response import draw_response_figures
from studyrunner.report.figures.style import (
    FONT_SIZE,
    NEUTRAL,
    STYLE,
    TEXT_WIDTH_IN,
    THRESHOLD_COLOUR,
    as_float,
    panels,
    save,
    tick_formatter,
    time_colour,
)
from studyrunner.report.formatting import RANGE_DASH, fmt_int, fmt_num
from studyrunner.results.models import NetworkTraining, Nomogram, PatientColumn, Results, RiskScores, SubgroupHazards

COHORT_MARKERS = {"training": "o", "test": "^"}
CENSORED_COLOUR = "#c9c9c9"
Patients = Mapping[str, PatientColumn]


def time_to_event(results: Results, name: str | None) -> TimeToEventEndpoint | None:
    """The protocol's time-to-event endpoint ``name`` (None when the run does not record one)."""
    endpoint = results.endpoints.get(name) if name is not None else None
    return endpoint if isinstance(endpoint, TimeToEventEndpoint) else None


def network_title(name: str, record: NetworkTraining) -> str:
    """A network's panel title: "OS network", "Response network"."""
    return "Response network" if record.kind == "response" else f"{name.upper()} network"


def cohort_rows(patients: Patients, partitions: Sequence[str]) -> np.ndarray:
    """Positions in the patients table of the patients in ``partitions``, in table order."""
    wanted = set(partitions)
    return np.array([i for i, p in enumerate(patients.get("partition") or []) if p in wanted], dtype=int)


def integer_ticks(axis: Any) -> None:
    """Integer ticks labelled through ``fmt_int`` on a matplotlib x or y axis."""
    axis.set_major_locator(MaxNLocator(integer=True))
    axis.set_major_formatter(FuncFormatter(lambda v, _: fmt_int(v)))


# --------------------------------------------------------------------------- training curves


def draw_training(networks: Mapping[str, NetworkTraining], path: Path) -> Path:
    """Training and validation loss per epoch, one panel per network; the chosen epoch dotted."""
    names = [n for n in networks if networks[n].history]
    with plt.rc_context(STYLE):
        fig, axes = panels(len(names), height=2.35)
        fig.subplots_adjust(top=0.8)
        for i, (ax, name) in enumerate(zip(axes, names, strict=False)):
            record = networks[name]
            epochs = [h.epoch for h in record.history]
            for key, label, colour, style in (("train_loss", "Training (fit)", NEUTRAL, "o-"),
                                              ("val_loss", "Validation (model choice)", THRESHOLD_COLOUR, "s--")):
                values = [as_float(getattr(h, key)) for h in record.history]
                ax.plot(epochs, values, style, color=colour, ms=3, lw=1.1, label=label)
            ax.axvline(record.best_epoch, color="#777777", lw=0.8, ls=":", label="Chosen epoch" if i == 0 else None)
            ax.margins(x=0.08)
            integer_ticks(ax.xaxis)
            ax.set_title(network_title(name, record), loc="left", fontsize=FONT_SIZE)
            ax.set_xlabel("Epoch")
            if i == 0:
                ax.set_ylabel("Loss")
        fig.legend(*axes[0].get_legend_handles_labels(), loc="upper left", ncol=3, bbox_to_anchor=(0.07, 1.0))
        return save(fig, path)


# --------------------------------------------------------------------------- risk vectors (Figure 2A,B)


def event_intervals(times: Sequence[float], cutoffs: Sequence[float]) -> np.ndarray:
    """0-based interval of each event time under the network's half-open intervals
    [0, c1), [c1, c2), [c2, inf) (``studyrunner.deep.intervals``: a time at a cut-off goes right)."""
    targets, _ = interval_labels(np.asarray(times, dtype=float), np.ones(len(times)), cutoffs)
    return targets.argmax(axis=1)


def interval_names(cutoffs: Sequence[float], unit: str) -> list[str]:
    """Legend names of the intervals: "< 114 days", "114–276 days", "≥ 276 days"."""
    c = [fmt_num(x, 0) for x in cutoffs]
    middle = [f"{a}{RANGE_DASH}{b} {unit}" for a, b in pairwise(c)]
    return [f"< {c[0]} {unit}", *middle, f"\u2265 {c[-1]} {unit}"]


def risk_vector_points(patients: Patients, score_columns: Sequence[str], time: str,
                       event: str, cutoffs: Sequence[float], cohorts: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """The risk vectors of the patients with the event in a cohort: {"xyz" (n x 3), "interval"
    (0-based, see ``event_intervals``), "cohort" (name per patient), "patient_id"}."""
    cohort_of = {p: name for name, parts in cohorts.items() for p in parts}
    partition = [str(p) for p in patients["partition"]]
    rows = [i for i, (e, p) in enumerate(zip(patients[event], partition, strict=False))
            if e is not None and int(e) == 1 and p in cohort_of]
    xyz = np.array([[patients[c][i] for c in score_columns] for i in rows], dtype=float).reshape(-1, len(score_columns))
    return {"xyz": xyz, "interval": event_intervals([as_float(patients[time][i]) for i in rows], cutoffs),
            "cohort": [cohort_of[partition[i]] for i in rows],
            "patient_id": [patients["patient_id"][i] for i in rows]}


def draw_risk_vectors(points: Mapping[str, Any], cutoffs: Sequence[float], endpoint: TimeToEventEndpoint,
                      axis_labels: Sequence[str], path: Path) -> Path:
    """3D scatter of the risk vectors, colour = interval of the event time, marker = cohort."""
    names = interval_names(cutoffs, endpoint.unit)
    with plt.rc_context(STYLE):
        fig = plt.figure(figsize=(TEXT_WIDTH_IN, 3.7))
        ax: Any = fig.add_axes((-0.02, 0.03, 0.66, 0.93), projection="3d")  # Axes3D (mplot3d has no types)
        for cohort in COHORT_MARKERS:
            for k in range(len(names)):
                mask = np.array([c == cohort for c in points["cohort"]], dtype=bool) & (points["interval"] == k)
                if mask.any():
                    ax.scatter(*points["xyz"][mask].T, marker=COHORT_MARKERS[cohort], color=time_colour(k), s=22,
                               depthshade=False, edgecolors="white", linewidths=0.3)
        for setter, label in zip((ax.set_xlabel, ax.set_ylabel, ax.set_zlabel), axis_labels, strict=False):
            setter(label, labelpad=2)
        ax.tick_params(labelsize=FONT_SIZE - 2, pad=0)
        for axis in (ax.xaxis, ax.yaxis, ax.zaxis):
            axis.set_major_locator(MaxNLocator(4))
        ax.set_box_aspect(None, zoom=0.92)
        handles = [plt.Line2D([], [], ls="", marker="o", color=time_colour(k), label=n) for k, n in enumerate(names)]
        handles += [plt.Line2D([], [], ls="", marker=m, color="#777777", label=f"{cohort_label(c)} "
                               f"(n = {fmt_int(sum(x == c for x in points['cohort']))})")
                    for c, m in COHORT_MARKERS.items()]
        fig.legend(handles=handles, loc="center left", bbox_to_anchor=(0.64, 0.5), title="Event time interval",
                   title_fontsize=FONT_SIZE, alignment="left")
        fig.text(0.01, 0.98, f"{endpoint.label}: risk vectors of the patients with the event",
                 ha="left", va="top", fontweight="bold")
        return save(fig, path)


# --------------------------------------------------------------------------- score ordering (Figure 3C)


def scale_unit(values: Sequence[float]) -> np.ndarray:
    """Min-max scaling to [0, 1] (all 0.5 when the values are all equal)."""
    v = np.asarray(values, dtype=float)
    lo, hi = np.nanmin(v), np.nanmax(v)
    return np.full_like(v, 0.5) if hi == lo else (v - lo) / (hi - lo)


def score_ordering(risk: RiskScores, cohort: str) -> dict[str, Any] | None:
    """A cohort's patients sorted by the headline score (stable): {"cohort", "order" (rows of
    the patients table), "scaled": {score: values in [0, 1] over the cohort} for every survival
    score in the table, "misordered": {score: count} for the two compared scores}.

    ``per_patient`` rows are the patients table's row labels (or positions within the cohort
    when they do not all name rows of the cohort)."""
    patients, headline = risk.patients, risk.headline_score
    rows = cohort_rows(patients, risk.cohorts.get(cohort) or [])
    if rows.size == 0 or headline is None or headline not in patients:
        return None
    order = rows[np.argsort(np.array([as_float(patients[headline][i]) for i in rows]), kind="stable")]
    scaled = {s: scale_unit([as_float(patients[s][i]) for i in order]) for s in risk.scores if s in patients}
    comparison = risk.comparison.get(cohort)
    per = {int(r.row): r for r in (comparison.per_patient if comparison is not None else [])}
    local = not set(per) <= set(rows.tolist())
    position = {int(g): k for k, g in enumerate(rows)}
    misordered = {}
    for key, name in zip(("misordered_a", "misordered_b"), risk.comparison_scores, strict=False):
        if per:
            found = [per.get(position[g] if local else int(g)) for g in order]
            misordered[name] = np.array([getattr(r, key) if r is not None else math.nan for r in found], dtype=float)
    return {"cohort": cohort, "order": order, "scaled": scaled, "misordered": misordered}


def draw_score_ordering(results: Results, risk: RiskScores, data: Mapping[str, Any], path: Path) -> Path:
    """Upper: follow-up of each patient (events of the headline endpoint, those of the other
    survival endpoints marked). Lower: the scaled scores as bars and each patient's mis-ordered
    comparable pairs for the two compared scores as lines."""
    n = len(data["order"])
    with plt.rc_context(STYLE):
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(TEXT_WIDTH_IN, 4.0), sharex=True,
                                          gridspec_kw={"height_ratios": [1, 1.4], "hspace": 0.1})
        fig.subplots_adjust(left=0.11, right=0.89, top=0.91, bottom=0.2)
        _follow_up(top, results, risk, data["order"])
        _scaled_scores(bottom, risk, data)
        bottom.set_yticks([0, 0.5, 1])
        bottom.set_xlim(-0.6, n - 0.4)
        bottom.set_xticks([])
        bottom.set_xlabel(f"{cohort_label(data['cohort'])} patients (n = {fmt_int(n)}), "
                          f"sorted by {score_label(risk, risk.headline_score or '')} (low to high)")
        return save(fig, path)


def _follow_up(ax: Axes, results: Results, risk: RiskScores, order: Sequence[int]) -> None:
    """Each patient's follow-up for the headline score's endpoint as a bar (red: the event),
    with the event times of the other survival endpoints marked."""
    patients = risk.patients
    headline = risk.scores.get(risk.headline_score or "")
    main_name = headline.endpoint if headline is not None else None
    main = time_to_event(results, main_name)
    if main is not None and main.time in patients:
        times = np.array([as_float(patients[main.time][i]) for i in order])
        events = np.array([patients[main.event][i] == 1 for i in order])
        ax.bar(np.arange(len(order)), times, width=0.8, color=np.where(events, THRESHOLD_COLOUR, CENSORED_COLOUR))
        for colour, label in ((THRESHOLD_COLOUR, f"{main.label}: event"), (CENSORED_COLOUR, "Censored")):
            ax.add_patch(Rectangle((0, 0), 0, 0, color=colour, label=label))
    others = dict.fromkeys(block.endpoint for block in risk.scores.values() if block.endpoint != main_name)
    for name in others:
        other = time_to_event(results, name)
        if other is None or other.time not in patients:
            continue
        marked = [k for k, i in enumerate(order) if patients[other.event][i] == 1]
        ax.plot(marked, [as_float(patients[other.time][order[k]]) for k in marked], "_", color="#1a1a1a",
                ms=6, mew=1.2, ls="", label=f"{other.label}: event")
    ax.set_ylabel(f"Follow-up\n({main.unit if main is not None else 'days'})")
    ax.yaxis.set_major_formatter(tick_formatter(0))
    ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=3, borderaxespad=0.2)


def _scaled_scores(ax: Axes, risk: RiskScores, data: Mapping[str, Any]) -> None:
    """The scaled scores as grouped bars and, on a second y axis, the mis-ordered pairs per patient."""
    x = np.arange(len(data["order"]))
    names = list(data["scaled"])
    colours = score_colours(risk)
    width = 0.8 / max(len(names), 1)
    for k, name in enumerate(names):
        ax.bar(x + (k - (len(names) - 1) / 2) * width, data["scaled"][name], width=width, alpha=0.75,
               color=colours.get(name, NEUTRAL), label=score_label(risk, name))
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("Score, scaled to\n0\u20131 over the cohort")
    ax.yaxis.set_major_formatter(tick_formatter(1))
    twin = ax.twinx()
    twin.spines["right"].set_visible(True)
    for name, counts in data["misordered"].items():
        twin.plot(x, counts, "o-", ms=2.5, lw=1.0, color=colours.get(name, "#1a1a1a"),
                  markeredgecolor="#1a1a1a", markeredgewidth=0.4,
                  label=f"Mis-ordered pairs, {score_label(risk, name)}")
    twin.set_ylabel("Mis-ordered pairs per patient")
    twin.set_ylim(0, max([np.nanmax(c) for c in data["misordered"].values() if np.isfinite(c).any()] + [1]) * 1.1)
    integer_ticks(twin.yaxis)
    handles, labels = ax.get_legend_handles_labels()
    twin_handles, twin_labels = twin.get_legend_handles_labels()
    ax.legend(handles + twin_handles, labels + twin_labels, loc="upper left", ncol=3, bbox_to_anchor=(-0.02, -0.15))


# --------------------------------------------------------------------------- subgroups (Figure 4C,D)


def subgroup_panels(subgroup: SubgroupHazards) -> list[Panel]:
    """One panel per level: title "<level> (n, events)", the level's block, risk-group labels."""
    labels = {"low": "Low risk", "high": "High risk"}
    return [Panel(f"{level_label(lv.level)}\nn = {fmt_int(lv.n)}, events = {fmt_int(lv.n_events)}", lv, labels)
            for lv in subgroup.levels]


# --------------------------------------------------------------------------- entry point


def draw_deep_figures(results: Results, figures_dir: Path, run_dir: Path) -> dict[str, Path]:
    """Draw every seed-000 figure that results.json has data for; return {figure key: PNG path}.

    Keys (score, endpoint and network names as recorded): "deep_training",
    "risk_vectors_<survival network>", "km_<score>_<cohort>", "score_ordering",
    "clinical_forest", "nomogram", "subgroups_<column>", then those of
    ``response.draw_response_figures`` ("response_km_<endpoint>", "response_roc",
    "response_subgroups") and of ``explanations.draw_explanation_figures`` ("gradcam", "ssim_spearman")."""
    figures: dict[str, Path] = {}
    networks = results.deep.networks if results.deep is not None else {}
    if any(n.history for n in networks.values()):
        figures["deep_training"] = draw_training(networks, figures_dir / "deep_training.png")
    risk = results.risk_scores
    if risk is not None:
        figures.update(_risk_vector_figures(results, networks, risk, figures_dir))
        figures.update(_score_km_figures(results, risk, figures_dir))
        figures.update(_risk_score_figures(results, risk, figures_dir))
    figures.update(draw_response_figures(results, figures_dir))
    figures.update(draw_explanation_figures(results, figures_dir, run_dir))
    return figures


def _risk_vector_figures(results: Results, networks: Mapping[str, NetworkTraining], risk: RiskScores,
                         figures_dir: Path) -> dict[str, Path]:
    """"risk_vectors_<network>": for a survival network with cut-offs whose score columns are recorded."""
    figures: dict[str, Path] = {}
    patients = risk.patients
    for name, record in networks.items():
        endpoint = time_to_event(results, record.endpoint)
        if record.kind != "survival" or endpoint is None or not record.cutoffs:
            continue
        columns = record.score_columns
        if columns and all(c in patients for c in [*columns, endpoint.event, endpoint.time]):
            points = risk_vector_points(patients, columns, endpoint.time, endpoint.event, record.cutoffs,
                                        risk.cohorts)
            if len(points["patient_id"]):
                labels = [f"{name.upper()} score {k + 1}" for k in range(len(columns))]
                figures[f"risk_vectors_{name}"] = draw_risk_vectors(points, record.cutoffs, endpoint, labels,
                                                                    figures_dir / f"risk_vectors_{name}.png")
    return figures


def _score_km_figures(results: Results, risk: RiskScores, figures_dir: Path) -> dict[str, Path]:
    """"km_<score>_<cohort>": Kaplan-Meier curves of each risk score's groups per cohort."""
    figures: dict[str, Path] = {}
    for name, block in risk.scores.items():
        endpoint = time_to_event(results, block.endpoint)
        for cohort, ev in block.evaluation.items():
            if ev.km:
                figures[f"km_{name}_{cohort}"] = draw_km(
                    ev, endpoint.label if endpoint is not None else "Survival", figures_dir / f"km_{name}_{cohort}.png",
                    cohort_label=f"{block.label}, {cohort_label(cohort).lower()}",
                    time_unit=endpoint.unit if endpoint is not None else None,
                    search=block.cutoff.search_test if cohort == "training" and block.cutoff.p_value is not None
                    else None)
    return figures


def _risk_score_figures(results: Results, risk: RiskScores, figures_dir: Path) -> dict[str, Path]:
    """"score_ordering", "clinical_forest", "nomogram" and "subgroups_<column>"."""
    figures: dict[str, Path] = {}
    data = score_ordering(risk, "test") or score_ordering(risk, "training")
    if data is not None:
        figures["score_ordering"] = draw_score_ordering(results, risk, data, figures_dir / "score_ordering.png")
    rows = forest_rows(risk, risk.clinical_cox)
    if rows:
        figures["clinical_forest"] = draw_forest(rows, figures_dir / "clinical_forest.png")
    nomogram = risk.nomogram
    if isinstance(nomogram, Nomogram) and nomogram.predictors and nomogram.total_points:
        figures["nomogram"] = draw_nomogram(nomogram_rows(risk, nomogram), nomogram, figures_dir / "nomogram.png")
    headline = risk.headline_score
    block = risk.scores.get(headline) if headline is not None else None
    endpoint = time_to_event(results, block.endpoint if block is not None else None)
    if headline is None or endpoint is None:
        return figures
    for column, subgroup in risk.subgroups.items():
        if isinstance(subgroup, SubgroupHazards) and subgroup.levels:
            heading = f"{score_label(risk, headline)} risk groups within {column_label(column).lower()} subgroups"
            figures[f"subgroups_{column}"] = draw_km_panels(subgroup_panels(subgroup), endpoint, heading,
                                                            figures_dir / f"subgroups_{column}.png")
    return figures
