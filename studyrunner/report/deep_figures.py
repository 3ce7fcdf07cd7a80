"""Report figures of the seed-000 CNN risk-score study, drawn from results.json.

Seed 000 (He et al., Transl Lung Cancer Res 2022;11(4):670-685, Figures 2-6): the loss
curves of the survival and dual-task networks; the risk vectors of the patients with the
event in 3D, coloured by the time interval of the event (Figure 2A,B); Kaplan-Meier curves
of OSRS, PFSRS and MOSRS per cohort (Figures 2C,D and 3A,B, drawn by ``figures.draw_km``);
the patients sorted by MOSRS with their scores and their mis-ordered pairs (Figure 3C, the
"sorting errors" of Harrell's C, Harrell et al., Stat Med 1996;15:361-387); the clinical Cox
models as a forest plot and the rms nomogram (Harrell, Regression Modeling Strategies, 2nd
ed. 2015, section 10.5; Figure 4A,B); and MOSRS within subgroups (Figure 4C,D), drawn as
the small Kaplan-Meier panels of ``response_figures.draw_km_panels``. The response, Grad-CAM
and SSIM figures are drawn by ``studyrunner.report.response_figures``.

Style, sizes and number formatting follow ``studyrunner.report.figures``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from studyrunner.deep.intervals import interval_labels
from studyrunner.report.figures import (
    FONT_SIZE,
    GROUP_COLOURS,
    NEUTRAL,
    STYLE,
    TEXT_WIDTH_IN,
    THRESHOLD_COLOUR,
    _panels,
    _recorded,
    _save,
    draw_km,
    time_colour,
)
from studyrunner.report.formatting import (
    RANGE_DASH,
    ci_label,
    fmt_hr,
    fmt_int,
    fmt_num,
    fmt_p_eq,
    fmt_value,
)
from studyrunner.report.response_figures import (
    COHORT_LABELS,
    column_label,
    draw_km_panels,
    draw_response_figures,
    level_label,
    score_label,
    tick_formatter,
)

import matplotlib.pyplot as plt  # noqa: E402  (figures chose the Agg backend)
from matplotlib.patches import Rectangle  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402
from matplotlib.transforms import blended_transform_factory  # noqa: E402

NETWORK_LABELS = {"os": "OS network", "pfs": "PFS network", "response": "Response network"}
COHORT_MARKERS = {"training": "o", "test": "^"}
SCORE_COLOURS = {"osrs": "#b03a2e", "pfsrs": "#c98a00", "mosrs": "#2e8b57"}
FOREST_CLIP = (0.001, 1000.0)


def _endpoint(results: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    return (results.get("endpoints") or {}).get(name) or {}


def cohort_rows(patients: Mapping[str, Sequence[Any]], partitions: Sequence[str]) -> np.ndarray:
    """Positions in the patients table of the patients in ``partitions``, in table order."""
    wanted = set(partitions)
    return np.array([i for i, p in enumerate(patients.get("partition") or []) if p in wanted], dtype=int)


# --------------------------------------------------------------------------- training curves


def draw_training(networks: Mapping[str, Any], path: Path) -> Path:
    """Training and validation loss per epoch, one panel per network; the chosen epoch dotted."""
    names = [n for n in networks if (networks[n] or {}).get("history")]
    with plt.rc_context(STYLE):
        fig, axes = _panels(len(names), height=2.35)
        fig.subplots_adjust(top=0.8)
        for i, (ax, name) in enumerate(zip(axes, names)):
            record = networks[name]
            epochs = [h["epoch"] for h in record["history"]]
            for key, label, colour, style in (("train_loss", "Training (fit)", NEUTRAL, "o-"),
                                              ("val_loss", "Validation (model choice)", THRESHOLD_COLOUR, "s--")):
                values = [math.nan if h.get(key) is None else h[key] for h in record["history"]]
                ax.plot(epochs, values, style, color=colour, ms=3, lw=1.1, label=label)
            best = record.get("best_epoch")
            if best is not None:
                ax.axvline(best, color="#777777", lw=0.8, ls=":", label="Chosen epoch" if i == 0 else None)
            ax.margins(x=0.08)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt_int(v)))
            ax.set_title(NETWORK_LABELS.get(name, name), loc="left", fontsize=FONT_SIZE)
            ax.set_xlabel("Epoch")
            if i == 0:
                ax.set_ylabel("Loss")
        fig.legend(*axes[0].get_legend_handles_labels(), loc="upper left", ncol=3, bbox_to_anchor=(0.07, 1.0))
        return _save(fig, path)


# --------------------------------------------------------------------------- risk vectors (Figure 2A,B)


def event_intervals(times: Sequence[float], cutoffs: Sequence[float]) -> np.ndarray:
    """0-based interval of each event time under the network's half-open intervals
    [0, c1), [c1, c2), [c2, inf) (``studyrunner.deep.intervals``: a time at a cut-off goes right)."""
    targets, _ = interval_labels(np.asarray(times, dtype=float), np.ones(len(times)), cutoffs)
    return targets.argmax(axis=1)


def interval_names(cutoffs: Sequence[float], unit: str) -> list[str]:
    """Legend names of the intervals: "< 114 days", "114–276 days", "≥ 276 days"."""
    c = [fmt_num(x, 0) for x in cutoffs]
    middle = [f"{a}{RANGE_DASH}{b} {unit}" for a, b in zip(c, c[1:])]
    return [f"< {c[0]} {unit}", *middle, f"\u2265 {c[-1]} {unit}"]


def risk_vector_points(patients: Mapping[str, Sequence[Any]], score_columns: Sequence[str], time: str,
                       event: str, cutoffs: Sequence[float], cohorts: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """The risk vectors of the patients with the event in a cohort: {"xyz" (n x 3), "interval"
    (0-based, see ``event_intervals``), "cohort" (name per patient), "patient_id"}."""
    cohort_of = {p: name for name, parts in cohorts.items() for p in parts}
    rows = [i for i, (e, p) in enumerate(zip(patients[event], patients["partition"]))
            if e is not None and int(e) == 1 and p in cohort_of]
    xyz = np.array([[patients[c][i] for c in score_columns] for i in rows], dtype=float).reshape(-1, len(score_columns))
    return {"xyz": xyz, "interval": event_intervals([patients[time][i] for i in rows], cutoffs),
            "cohort": [cohort_of[patients["partition"][i]] for i in rows],
            "patient_id": [patients["patient_id"][i] for i in rows]}


def draw_risk_vectors(points: Mapping[str, Any], cutoffs: Sequence[float], endpoint: Mapping[str, Any],
                      axis_labels: Sequence[str], path: Path) -> Path:
    """3D scatter of the risk vectors, colour = interval of the event time, marker = cohort."""
    names = interval_names(cutoffs, endpoint.get("unit") or "days")
    with plt.rc_context(STYLE):
        fig = plt.figure(figsize=(TEXT_WIDTH_IN, 3.7))
        ax = fig.add_axes((-0.02, 0.03, 0.66, 0.93), projection="3d")
        for cohort in COHORT_MARKERS:
            for k in range(len(names)):
                mask = np.array([c == cohort for c in points["cohort"]], dtype=bool) & (points["interval"] == k)
                if mask.any():
                    ax.scatter(*points["xyz"][mask].T, marker=COHORT_MARKERS[cohort], color=time_colour(k), s=22,
                               depthshade=False, edgecolors="white", linewidths=0.3)
        for setter, label in zip((ax.set_xlabel, ax.set_ylabel, ax.set_zlabel), axis_labels):
            setter(label, labelpad=2)
        ax.tick_params(labelsize=FONT_SIZE - 2, pad=0)
        for axis in (ax.xaxis, ax.yaxis, ax.zaxis):
            axis.set_major_locator(MaxNLocator(4))
        ax.set_box_aspect(None, zoom=0.92)
        handles = [plt.Line2D([], [], ls="", marker="o", color=time_colour(k), label=n) for k, n in enumerate(names)]
        handles += [plt.Line2D([], [], ls="", marker=m, color="#777777", label=f"{COHORT_LABELS[c]} "
                               f"(n = {fmt_int(sum(x == c for x in points['cohort']))})")
                    for c, m in COHORT_MARKERS.items()]
        fig.legend(handles=handles, loc="center left", bbox_to_anchor=(0.64, 0.5), title="Event time interval",
                   title_fontsize=FONT_SIZE, alignment="left")
        fig.text(0.01, 0.98, f"{endpoint.get('label', '')}: risk vectors of the patients with the event",
                 ha="left", va="top", fontweight="bold")
        return _save(fig, path)


# --------------------------------------------------------------------------- score ordering (Figure 3C)


def scale_unit(values: Sequence[float]) -> np.ndarray:
    """Min-max scaling to [0, 1] (all 0.5 when the values are all equal)."""
    v = np.asarray(values, dtype=float)
    lo, hi = np.nanmin(v), np.nanmax(v)
    return np.full_like(v, 0.5) if hi == lo else (v - lo) / (hi - lo)


def score_ordering(risk_scores: Mapping[str, Any], cohort: str) -> dict[str, Any] | None:
    """A cohort's patients sorted by MOSRS (stable): {"cohort", "order" (rows of the patients
    table), "scaled": {score: values in [0, 1] over the cohort}, "misordered": {score: count}}.

    ``per_patient`` rows are the patients table's row labels (or positions within the cohort
    when they do not all name rows of the cohort)."""
    patients = risk_scores.get("patients") or {}
    rows = cohort_rows(patients, (risk_scores.get("cohorts") or {}).get(cohort) or [])
    if rows.size == 0 or "mosrs" not in patients:
        return None
    order = rows[np.argsort(np.array([patients["mosrs"][i] for i in rows], dtype=float), kind="stable")]
    scaled = {s: scale_unit([patients[s][i] for i in order]) for s in ("osrs", "pfsrs", "mosrs") if s in patients}
    per = {int(r["row"]): r for r in ((risk_scores.get("comparison") or {}).get(cohort) or {}).get("per_patient") or []}
    local = not set(per) <= set(rows.tolist())
    position = {int(g): k for k, g in enumerate(rows)}
    misordered = {}
    for key, name in zip(("misordered_a", "misordered_b"), risk_scores.get("comparison_scores") or []):
        if per:
            misordered[name] = np.array([(per.get(position[g] if local else int(g)) or {}).get(key, math.nan)
                                         for g in order], dtype=float)
    return {"cohort": cohort, "order": order, "scaled": scaled, "misordered": misordered}


def draw_score_ordering(results: Mapping[str, Any], data: Mapping[str, Any], path: Path) -> Path:
    """Upper: follow-up of each patient (death / progression marked). Lower: the scaled scores as
    bars and each patient's mis-ordered comparable pairs for MOSRS and OSRS as lines."""
    patients = results["risk_scores"]["patients"]
    order, n = data["order"], len(data["order"])
    os_ep, pfs_ep = _endpoint(results, "os"), _endpoint(results, "pfs")
    x = np.arange(n)
    with plt.rc_context(STYLE):
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(TEXT_WIDTH_IN, 4.0), sharex=True,
                                          gridspec_kw={"height_ratios": [1, 1.4], "hspace": 0.1})
        fig.subplots_adjust(left=0.11, right=0.89, top=0.91, bottom=0.2)
        if os_ep.get("time") in patients:
            times = np.array([patients[os_ep["time"]][i] for i in order], dtype=float)
            dead = np.array([patients[os_ep["event"]][i] == 1 for i in order])
            top.bar(x, times, width=0.8, color=np.where(dead, THRESHOLD_COLOUR, "#c9c9c9"))
            for colour, label in ((THRESHOLD_COLOUR, "Died"), ("#c9c9c9", "Alive at last follow-up")):
                top.add_patch(Rectangle((0, 0), 0, 0, color=colour, label=label))
        if pfs_ep.get("time") in patients:
            progressed = [k for k, i in enumerate(order) if patients[pfs_ep["event"]][i] == 1]
            top.plot(progressed, [patients[pfs_ep["time"]][order[k]] for k in progressed], "_", color="#1a1a1a",
                     ms=6, mew=1.2, ls="", label="Progression")
        top.set_ylabel(f"Follow-up\n({os_ep.get('unit') or 'days'})")
        top.yaxis.set_major_formatter(tick_formatter(0))
        top.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=3, borderaxespad=0.2)
        names = list(data["scaled"])
        width = 0.8 / max(len(names), 1)
        for k, name in enumerate(names):
            bottom.bar(x + (k - (len(names) - 1) / 2) * width, data["scaled"][name], width=width, alpha=0.75,
                       color=SCORE_COLOURS.get(name, NEUTRAL), label=score_label(results, name))
        bottom.set_ylim(0, 1.05)
        bottom.set_ylabel("Score, scaled to\n0\u20131 over the cohort")
        bottom.yaxis.set_major_formatter(tick_formatter(1))
        twin = bottom.twinx()
        twin.spines["right"].set_visible(True)
        for name, counts in data["misordered"].items():
            twin.plot(x, counts, "o-", ms=2.5, lw=1.0, color=SCORE_COLOURS.get(name, "#1a1a1a"),
                      markeredgecolor="#1a1a1a", markeredgewidth=0.4, label=f"Mis-ordered pairs, {score_label(results, name)}")
        twin.set_ylabel("Mis-ordered pairs per patient")
        twin.set_ylim(0, max([np.nanmax(c) for c in data["misordered"].values() if np.isfinite(c).any()] + [1]) * 1.1)
        twin.yaxis.set_major_locator(MaxNLocator(integer=True))
        twin.yaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt_int(v)))
        handles = bottom.get_legend_handles_labels()
        extra = twin.get_legend_handles_labels()
        bottom.legend(handles[0] + extra[0], handles[1] + extra[1], loc="upper left", ncol=3,
                      bbox_to_anchor=(-0.02, -0.15))
        bottom.set_yticks([0, 0.5, 1])
        bottom.set_xlim(-0.6, n - 0.4)
        bottom.set_xticks([])
        bottom.set_xlabel(f"{COHORT_LABELS.get(data['cohort'], data['cohort'])} patients (n = {fmt_int(n)}), "
                          f"sorted by {score_label(results, 'mosrs')} (low to high)")
        return _save(fig, path)


# --------------------------------------------------------------------------- Cox forest plot and nomogram


def covariate_label(results: Mapping[str, Any], name: str) -> str:
    """A Cox covariate for display: a CNN score by its label, other columns via ``column_label``."""
    scores = (results.get("risk_scores") or {}).get("scores") or {}
    return score_label(results, name) if name in scores else column_label(name)


def forest_rows(results: Mapping[str, Any], clinical_cox: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows of the forest plot, univariate block then multivariable block: {"model", "label",
    "indent", "hr", "lower", "upper", "p"}; a heading row per block and per categorical
    covariate ("Histology (vs reference)") has no HR, its levels are indented below it."""
    rows: list[dict[str, Any]] = []
    for model, heading in (("univariate", "Univariate Cox models"), ("multivariable", "Multivariable Cox model")):
        entries = clinical_cox.get(model) or []
        if entries:
            rows.append({"model": model, "label": heading, "indent": 0, "hr": None})
        previous = None
        for r in entries:
            label = covariate_label(results, r["covariate"])
            if r.get("level") is not None:
                if r["covariate"] != previous:
                    rows.append({"model": model, "label": f"{label} (vs {r.get('reference')})", "indent": 1, "hr": None})
                label = str(r["level"])
            previous = r["covariate"]
            rows.append({"model": model, "label": label, "indent": 2 if r.get("level") is not None else 1,
                         "hr": r.get("hr"), "lower": r.get("hr_lower"), "upper": r.get("hr_upper"), "p": r.get("p")})
    return rows


def forest_limits(rows: Sequence[Mapping[str, Any]]) -> tuple[float, float]:
    """Whole decades around every HR and limit, within ``FOREST_CLIP``."""
    values = [float(r[k]) for r in rows if r.get("hr") is not None for k in ("hr", "lower", "upper")
              if r.get(k) is not None and float(r[k]) > 0]
    lo = 10 ** math.floor(math.log10(min(values + [1.0])) + 1e-9)
    hi = 10 ** math.ceil(math.log10(max(values + [1.0])) - 1e-9)
    return max(lo, FOREST_CLIP[0]), min(max(hi, 10 * lo), FOREST_CLIP[1])


def draw_forest(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Cox hazard ratios with their CI on a log axis; CIs beyond the axis end in an arrow."""
    lo_clip, hi_clip = forest_limits(rows)
    fig_h = 0.5 + 0.2 * len(rows) + 0.45
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(TEXT_WIDTH_IN, fig_h))
        fig.subplots_adjust(left=0.44, right=0.7, top=1 - 0.45 / fig_h, bottom=0.45 / fig_h)
        labels = blended_transform_factory(fig.transFigure, ax.transData)
        ax.axvline(1.0, color="#999999", lw=0.7, ls="--")
        for i, row in enumerate(rows):
            ax.text(0.01 + 0.02 * row["indent"], i, row["label"], transform=labels, ha="left", va="center",
                    fontweight="bold" if row["indent"] == 0 else "normal")
            if row["hr"] is None:
                continue
            hr, lo, hi = (min(max(float(v), lo_clip), hi_clip) for v in (row["hr"], row["lower"], row["upper"]))
            ax.plot([lo, hi], [i, i], color=NEUTRAL, lw=1.2)
            for end, raw, marker in ((lo, row["lower"], "<"), (hi, row["upper"], ">")):
                if raw is not None and not lo_clip <= raw <= hi_clip:
                    ax.plot([end], [i], marker, color=NEUTRAL, ms=4)
            ax.plot([hr], [i], "s", color=GROUP_COLOURS["low"], ms=4)
            ax.text(0.715, i, fmt_hr(row["hr"], row["lower"], row["upper"]), transform=labels, ha="left", va="center")
            ax.text(0.99, i, fmt_p_eq(row["p"]), transform=labels, ha="right", va="center")
        ax.set_xscale("log")
        ax.set_xlim(lo_clip, hi_clip)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt_value(float(v))))
        ax.set_yticks([])
        ax.spines["left"].set_visible(False)
        ax.set_ylim(len(rows) - 0.5, -0.5)
        ax.set_xlabel(f"Hazard ratio ({ci_label()}), log scale")
        ax.text(0.715, -0.9, f"HR ({ci_label()})", transform=labels, ha="left", va="bottom", fontweight="bold")
        return _save(fig, path)


def nomogram_rows(results: Mapping[str, Any], nomogram: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The nomogram's axes top to bottom as {"label", "x", "ticks"}, x in the units of the
    Points axis: a predictor's ticks sit at their table points; the total-points, linear
    predictor and survival axes map total points linearly onto the Points range (the
    total-points span covers every tick of those axes). A survival axis's line ("span")
    covers its survival grid, so an axis with a single labelled tick still shows its range."""
    predictors = nomogram.get("predictors") or {}
    top = max([max(p["points"]) for p in predictors.values() if p.get("points")] + [0.0]) or 100.0
    points = [float(v) for v in np.arange(0, top + 1e-9, 10.0)]
    rows = [{"label": "Points", "x": points, "ticks": [fmt_value(v) for v in points]}]
    for name, p in predictors.items():
        ticks = [fmt_value(float(v)) if v is not None else str(s)
                 for v, s in zip(p.get("value_numeric") or [None] * len(p["values"]), p["values"])]
        rows.append({"label": covariate_label(results, name), "x": [float(v) for v in p["points"]], "ticks": ticks})
    totals = [float(v) for v in nomogram.get("total_points") or []]
    lp_axis = nomogram.get("lp_axis") or {}
    surv = nomogram.get("survival_axes") or {}
    span = totals + [float(v) for a in surv.values() for v in a["total_points"]] + list(lp_axis.get("total_points") or [])
    lo, hi = min(span), max(span)

    def to_x(values: Sequence[float]) -> list[float]:
        return [(float(v) - lo) / (hi - lo) * top for v in values]

    rows.append({"label": "Total points", "x": to_x(totals), "ticks": [fmt_value(v) for v in totals]})
    if lp_axis.get("lp"):
        rows.append({"label": "Linear predictor", "x": to_x(lp_axis["total_points"]),
                     "ticks": [fmt_value(round(float(v), 6)) for v in lp_axis["lp"]]})
    unit = nomogram.get("time_unit") or "days"
    grid = nomogram.get("survival_grid") or {}
    for axis in surv.values():
        time = fmt_value(float(axis["time"]))
        inside = [v for v in (grid.get(time) or {}).get("total_points") or [] if lo <= float(v) <= hi]
        rows.append({"label": f"Survival at {time} {unit}", "x": to_x(axis["total_points"]),
                     "ticks": [fmt_value(round(float(s), 6)) for s in axis["survival"]],
                     "span": to_x([min(inside), max(inside)]) if inside else None})
    return rows


def draw_nomogram(rows: Sequence[Mapping[str, Any]], nomogram: Mapping[str, Any], path: Path) -> Path:
    """The nomogram: one scale per row, tick labels above (alternating above/below where crowded)."""
    top = max(max(r["x"]) for r in rows[:1])
    fig_h = 0.5 + 0.42 * len(rows)
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(TEXT_WIDTH_IN, fig_h))
        fig.subplots_adjust(left=0.24, right=0.96, top=1 - 0.3 / fig_h, bottom=0.2 / fig_h)
        ax.axis("off")
        for i, row in enumerate(rows):
            y = -i
            xs = row["x"]
            ends = [*xs, *(row.get("span") or [])]
            ax.plot([min(ends), max(ends)], [y, y], color="#333333", lw=0.8)
            ranked = sorted(range(len(xs)), key=lambda k: xs[k])
            crowded = any(xs[b] - xs[a] < 0.06 * top for a, b in zip(ranked, ranked[1:]))
            for rank, k in enumerate(ranked):
                below = crowded and rank % 2 == 1
                ax.plot([xs[k], xs[k]], [y, y + (-0.1 if below else 0.1)], color="#333333", lw=0.7)
                ax.text(xs[k], y + (-0.14 if below else 0.14), row["ticks"][k], ha="center",
                        va="top" if below else "bottom", fontsize=FONT_SIZE - 1)
            ax.text(-0.02, y, row["label"], transform=ax.get_yaxis_transform(), ha="right", va="center",
                    fontweight="bold" if i == 0 else "normal")
        ax.set_xlim(-0.02 * top, 1.02 * top)
        ax.set_ylim(-len(rows) + 0.5, 0.6)
        fig.text(0.01, 1 - 0.05 / fig_h, f"Cox nomogram (n = {fmt_int(nomogram.get('n'))}, "
                 f"events = {fmt_int(nomogram.get('n_events'))})", ha="left", va="top", fontsize=FONT_SIZE - 0.5,
                 color="#444444")
        return _save(fig, path)


def subgroup_panels(subgroup: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any], Mapping[str, str]]]:
    """One panel per level: title "<level> (n, events)", the level's block, risk-group labels."""
    labels = {"low": "Low risk", "high": "High risk"}
    return [(f"{level_label(lv['level'])}\nn = {fmt_int(lv.get('n'))}, events = {fmt_int(lv.get('n_events'))}",
             lv, labels) for lv in subgroup.get("levels") or []]


# --------------------------------------------------------------------------- entry point


def draw_deep_figures(results: Mapping[str, Any], figures_dir: Path, run_dir: Path) -> dict[str, Path]:
    """Draw every seed-000 figure that results.json has data for; return {figure key: PNG path}.

    Keys: "deep_training", "risk_vectors_<os|pfs>", "km_<osrs|pfsrs|mosrs>_<training|test>",
    "score_ordering", "clinical_forest", "nomogram", "subgroups_<column>", then those of
    ``response_figures.draw_response_figures`` ("response_km_<endpoint>", "response_roc",
    "response_subgroups", "gradcam", "ssim_spearman")."""
    figures: dict[str, Path] = {}
    deep = results.get("deep") if _recorded(results.get("deep")) else {}
    networks = (deep or {}).get("networks") or {}
    if any((n or {}).get("history") for n in networks.values()):
        figures["deep_training"] = draw_training(networks, figures_dir / "deep_training.png")
    risk = results.get("risk_scores") if _recorded(results.get("risk_scores")) else {}
    patients = (risk or {}).get("patients") or {}
    for ep in ("os", "pfs"):
        record, endpoint = networks.get(ep) or {}, _endpoint(results, ep)
        columns = record.get("score_columns") or [f"{ep}_score_{k}" for k in (1, 2, 3)]
        if record.get("cutoffs") and all(c in patients for c in [*columns, endpoint.get("event"), endpoint.get("time")]):
            points = risk_vector_points(patients, columns, endpoint["time"], endpoint["event"], record["cutoffs"],
                                        risk.get("cohorts") or {})
            if len(points["patient_id"]):
                labels = [f"{ep.upper()} score {k + 1}" for k in range(len(columns))]
                figures[f"risk_vectors_{ep}"] = draw_risk_vectors(points, record["cutoffs"], endpoint, labels,
                                                                  figures_dir / f"risk_vectors_{ep}.png")
    for name in ("osrs", "pfsrs", "mosrs"):
        block = ((risk or {}).get("scores") or {}).get(name) or {}
        endpoint = _endpoint(results, block.get("endpoint") or "os")
        for cohort, ev in (block.get("evaluation") or {}).items():
            if ev and ev.get("km"):
                labelled = {**ev, "cohort_label": f"{score_label(results, name)}, {COHORT_LABELS.get(cohort, cohort).lower()}",
                            "time_unit": ev.get("time_unit") or endpoint.get("unit") or "days"}
                figures[f"km_{name}_{cohort}"] = draw_km(labelled, endpoint.get("label", "Survival"),
                                                         figures_dir / f"km_{name}_{cohort}.png")
    if risk:
        data = score_ordering(risk, "test") or score_ordering(risk, "training")
        if data is not None:
            figures["score_ordering"] = draw_score_ordering(results, data, figures_dir / "score_ordering.png")
        rows = forest_rows(results, risk.get("clinical_cox") or {})
        if rows:
            figures["clinical_forest"] = draw_forest(rows, figures_dir / "clinical_forest.png")
        nomogram = risk.get("nomogram")
        if _recorded(nomogram) and nomogram.get("predictors") and nomogram.get("total_points"):
            figures["nomogram"] = draw_nomogram(nomogram_rows(results, nomogram), nomogram,
                                                figures_dir / "nomogram.png")
        headline = risk.get("headline_score") or "mosrs"
        endpoint = _endpoint(results, ((risk.get("scores") or {}).get(headline) or {}).get("endpoint") or "os")
        for column, subgroup in (risk.get("subgroups") or {}).items():
            if _recorded(subgroup) and subgroup.get("levels"):
                heading = f"{score_label(results, headline)} risk groups within {column_label(column).lower()} subgroups"
                figures[f"subgroups_{column}"] = draw_km_panels(subgroup_panels(subgroup), endpoint, heading,
                                                                figures_dir / f"subgroups_{column}.png")
    figures.update(draw_response_figures(results, figures_dir, run_dir))
    return figures
