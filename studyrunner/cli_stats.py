"""``studyrunner stats``: one analysis on a CSV, for the statistician who already has a table.

Each command calls the same functions the pipeline uses and prints JSON on stdout. Rows
with a missing value in a used column are dropped and counted (``n_dropped``); ``n`` and
``n_events`` describe the rows analysed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import typer

from studyrunner.errors import InputError
from studyrunner.jsonable import to_jsonable
from studyrunner.protocol import ALL_LEARNERS

stats_app = typer.Typer(no_args_is_help=True, help="One analysis on a CSV (JSON on stdout).")


def _split(names: str) -> list[str]:
    return [n.strip() for n in names.split(",") if n.strip()]


def read_analysis_table(csv: Path, columns: list[str]) -> tuple[pd.DataFrame, int]:
    """The used columns of ``csv`` as numbers, without rows that miss one; and how many were dropped."""
    if not csv.is_file():
        raise InputError(f"{csv}: file not found")
    table = pd.read_csv(csv)
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputError(f"{csv}: column(s) {missing} not found (columns: {list(table.columns)})")
    used = table[columns]
    for column in columns:
        numbers = pd.to_numeric(used[column], errors="coerce")
        bad = used[column].notna() & numbers.isna()
        if bad.any():
            line = int(bad.idxmax()) + 2
            raise InputError(f"{csv}:{line}: column {column!r}: {used[column][bad].iloc[0]!r} is not a number")
    complete = used.apply(pd.to_numeric).dropna()
    return complete.reset_index(drop=True), len(used) - len(complete)


def _emit(payload: dict[str, Any], data: pd.DataFrame, event: str, n_dropped: int) -> None:
    header = {"n": len(data), "n_events": int(data[event].sum()), "n_dropped": n_dropped}
    typer.echo(json.dumps(to_jsonable({**header, **payload}), indent=2))


def _run(work: Callable[[], None]) -> None:
    try:
        work()
    except InputError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from exc


@stats_app.command("cox")
def cox(csv: Path = typer.Argument(...), time: str = typer.Option(..., "--time"),
        event: str = typer.Option(..., "--event"), covariates: str = typer.Option(..., "--covariates")) -> None:
    """Cox proportional-hazards model (R survival::coxph, Efron ties)."""
    from studyrunner.statistics.cox import fit_cox

    def work() -> None:
        names = _split(covariates)
        data, dropped = read_analysis_table(csv, [time, event, *names])
        fit = fit_cox(data, time, event, names)
        coefficients = {row["term"]: {k: row[k] for k in ("coef", "se", "hr", "hr_lower", "hr_upper", "p")}
                        for row in fit["coefficients"]}
        _emit({"coefficients": coefficients, "concordance": fit["concordance"], "loglik": fit["loglik"],
               "aic": fit["aic"]}, data, event, dropped)
    _run(work)


@stats_app.command("cutpoint")
def cutpoint(csv: Path = typer.Argument(...), time: str = typer.Option(..., "--time"),
             event: str = typer.Option(..., "--event"), marker: str = typer.Option(..., "--marker"),
             pmethod: str = typer.Option("Lau94", "--pmethod", help="Lau94 | HL | Lau92 | exactGauss")) -> None:
    """Cut-off by maximally selected rank statistics (R maxstat, log-rank scores)."""
    from studyrunner.statistics.cutpoint import maxstat_cutpoint

    def work() -> None:
        if pmethod not in ("Lau94", "HL", "Lau92", "exactGauss"):
            raise InputError(f"--pmethod must be Lau94, HL, Lau92 or exactGauss (got {pmethod!r})")
        data, dropped = read_analysis_table(csv, [time, event, marker])
        result = maxstat_cutpoint(data, time, event, marker, pmethod=pmethod)
        _emit({k: result[k] for k in ("cutpoint", "statistic", "p_value", "pmethod")}, data, event, dropped)
    _run(work)


@stats_app.command("timeroc")
def timeroc(csv: Path = typer.Argument(...), time: str = typer.Option(..., "--time"),
            event: str = typer.Option(..., "--event"), marker: str = typer.Option(..., "--marker"),
            times: str = typer.Option(..., "--times", help="comma-separated times, in the unit of --time")) -> None:
    """Time-dependent ROC AUC, cumulative cases / dynamic controls with IPCW (timeROC when
    installed, otherwise studyrunner's implementation of the same estimator)."""
    from studyrunner.statistics.timeroc import time_dependent_auc

    def work() -> None:
        try:
            at = [float(t) for t in _split(times)]
        except ValueError as exc:
            raise InputError(f"--times must be numbers separated by commas (got {times!r})") from exc
        data, dropped = read_analysis_table(csv, [time, event, marker])
        result = time_dependent_auc(data, time, event, marker, at)
        implementation = result["implementation"]
        _emit({"auc": result["auc"], "se": result["se"], "lower": result["lower"], "upper": result["upper"],
               "implementation": implementation.split()[0], "implementation_detail": implementation,
               "se_method": result["se_method"]}, data, event, dropped)
    _run(work)


@stats_app.command("select")
def select(csv: Path = typer.Argument(...), time: str = typer.Option(..., "--time"),
           event: str = typer.Option(..., "--event"), id_column: str | None = typer.Option(None, "--id"),
           learners: str = typer.Option(",".join(ALL_LEARNERS), "--learners", help="comma-separated learners"),
           p_threshold: float = typer.Option(0.05, "--p-threshold"),
           combine: str = typer.Option("intersection", "--combine", help="intersection | votes"),
           min_votes: int | None = typer.Option(None, "--min-votes"),
           seed: int = typer.Option(20231001, "--seed")) -> None:
    """Screening, learners, combination and stepwise Cox on a feature table (z-scored here);
    every other numeric column is a candidate feature."""
    from studyrunner.protocol import StatisticsSection
    from studyrunner.statistics.radiomics_model.development import develop_model

    def work() -> None:
        table = pd.read_csv(csv) if csv.is_file() else None
        if table is None:
            raise InputError(f"{csv}: file not found")
        excluded = {time, event} | ({id_column} if id_column else set())
        features = [c for c in table.columns if c not in excluded and pd.api.types.is_numeric_dtype(table[c])]
        data, dropped = read_analysis_table(csv, [time, event, *features])
        try:
            plan = StatisticsSection.model_validate({
                "endpoint": "endpoint", "screening": {"p_threshold": p_threshold},
                "selection": {"learners": _split(learners), "combine": combine, "min_votes": min_votes},
                "model": "stepwise_cox"})
        except ValueError as exc:
            raise InputError(f"invalid selection options: {exc}") from exc
        model = develop_model(data, None, time, event, plan, seed)
        selection = model.selection or {}
        _emit({"screened": selection.get("screened", []),
               "learners": {name: {"features": entry.get("features") or [],
                                   "implementation": entry.get("implementation"),
                                   "error": entry.get("error"),
                                   # the installed CRAN package stopped and the stand-in ran instead
                                   **({"package_error": entry["package_error"]} if entry.get("package_error") else {})}
                            for name, entry in selection.get("learners", {}).items()},
               "combined": selection.get("combined", []), "final": model.coefficients, "notes": model.notes},
              data, event, dropped)
    _run(work)
