"""The ``studyrunner`` command line.

Exit codes: 0 success; 1 an unexpected failure; 2 a bad protocol or input file (the message
names the file, row/line and column); 3 the clinical table failed its validation suite.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from studyrunner import __version__
from studyrunner.cli_stats import stats_app
from studyrunner.errors import StudyError
from studyrunner.protocol import ProtocolError, json_schema, load_protocol

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Validated, reproducible CT imaging-biomarker studies from a protocol YAML.")
app.add_typer(stats_app, name="stats")
console = Console(stderr=True)

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


def _fail(message: str, code: int) -> None:
    console.print(f"[bold red]error[/]: {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _load(protocol: Path):
    try:
        return load_protocol(protocol)
    except ProtocolError as exc:
        _fail(f"invalid protocol\n{exc}", 2)


class RichSink:
    """Stage lines and progress bars on the terminal (the run folder's log has the details)."""

    def __init__(self, progress: Progress):
        self.progress = progress

    def note(self, text: str) -> None:
        self.progress.console.print(f"  {text}")

    def stage(self, name: str, reused: bool, seconds: float) -> None:
        state = "[dim]unchanged, reused[/]" if reused else f"done in {seconds:.1f} s"
        self.progress.console.print(f"  [green]✓[/] {name:<11} {state}")

    def task(self, description: str) -> Callable[[int, int], None]:
        task_id = None

        def update(done: int, total: int) -> None:
            nonlocal task_id
            if task_id is None:
                task_id = self.progress.add_task(description, total=total)
            self.progress.update(task_id, completed=done)
        return update


def _check_device(device: str) -> None:
    if device not in ("auto", "cpu", "cuda"):
        _fail(f"--device must be auto, cpu or cuda (got {device!r})", 2)


def _announce(study: Any, what: str) -> None:
    """The first lines of a run: SYNTHETIC DATA when it is, and what runs."""
    if study.synthetic:
        console.print("[bold yellow]SYNTHETIC DATA[/]: this run uses a generated cohort.")
    console.print(f"studyrunner {__version__}: {what}")


def _cluster_spec(option: str | None, study_default: str) -> str:
    """--cluster when given, else the protocol's execution.cluster; a bad SPEC exits 2."""
    from studyrunner.cluster import ClusterSpecError, parse_cluster

    try:
        return parse_cluster(option if option is not None else study_default).text
    except ClusterSpecError as exc:
        _fail(str(exc), exc.exit_code)
        raise  # _fail exits


def _on_cluster(spec: str, sink: RichSink, work: Callable[[], Path]) -> Path:
    """``work()`` with the run's cluster open (started once, its dashboard address printed)."""
    from studyrunner.cluster import cluster_session

    with cluster_session(spec, note=sink.note):
        return work()


def _with_progress(work: Callable[[RichSink], Path]) -> Path:
    """Run ``work`` with progress bars on the terminal; a StudyError exits with its code."""
    columns = (TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=console, transient=True) as progress:
            return work(RichSink(progress))
    except StudyError as exc:
        _fail(str(exc), exc.exit_code)
        raise  # _fail exits; this keeps the type checker informed


CLUSTER_OPTION = typer.Option(None, "--cluster", help="local | dask:N | tcp://host:port (a Dask scheduler); "
                                                   "default: the protocol's execution.cluster, else local")


@app.command()
def run(
    protocol: Path = typer.Argument(..., help="protocol YAML"),
    out: Path | None = typer.Option(None, "--out", help="run folder (default: runs/<study>-<time>)"),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda"),
    workers: int = typer.Option(1, "--workers", min=1, help="parallel processes for per-case work"),
    cluster: str | None = CLUSTER_OPTION,
) -> None:
    """Run the whole study: validation, images, radiomics, R statistics, frozen model, PDF report."""
    from studyrunner.runner import RunOptions, run_study

    _check_device(device)
    loaded = _load(protocol)
    _announce(loaded.protocol.study, f"[bold]{loaded.protocol.study.name}[/] ({loaded.path})")
    spec = _cluster_spec(cluster, loaded.protocol.execution.cluster)
    run_dir = _with_progress(lambda sink: _on_cluster(
        spec, sink, lambda: run_study(loaded, RunOptions(out, device, workers, spec), sink)))
    results = json.loads((run_dir / "results.json").read_text())
    _print_summary(results, run_dir)


def _print_summary(results: dict, run_dir: Path) -> None:
    table = Table(title="Discrimination (C-index, 95% CI)", show_edge=False)
    table.add_column("cohort")
    table.add_column("n / events", justify="right")
    table.add_column("model C-index", justify="right")
    table.add_column("oracle C-index", justify="right")
    oracle = results.get("oracle") or {}
    evaluation = results.get("evaluation") or {}
    for name, block in ({} if "not_run" in evaluation else evaluation).items():
        c = block.get("c_index")
        model = f"{c:.3f} ({block['c_lower']:.3f}-{block['c_upper']:.3f})" if c is not None else "-"
        truth = oracle.get(name, {}).get("c_index")
        table.add_row(name, f"{block['n']} / {block['n_events']}", model, f"{truth:.3f}" if truth is not None else "-")
    console.print(table)
    record = results.get("model") or {}
    if record.get("note") or record.get("not_run"):
        console.print(f"[yellow]note[/]: no model was fitted: {record.get('note') or record['not_run']}")
    console.print(f"report: [bold]{run_dir / 'report.pdf'}[/]\nrun folder: {run_dir}")


@app.command()
def external(
    model: Path = typer.Argument(..., help="a run's model/ folder, or its bundle.json"),
    protocol: Path = typer.Argument(..., help="external-validation protocol YAML (study.kind: external_validation)"),
    out: Path | None = typer.Option(None, "--out", help="run folder (default: runs/<study>-<time>)"),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda"),
    workers: int = typer.Option(1, "--workers", min=1, help="parallel processes for per-case work"),
    cluster: str | None = CLUSTER_OPTION,
) -> None:
    """Apply a frozen model unchanged to another cohort: discrimination, calibration, risk groups, case mix."""
    from studyrunner.external.run import validate_externally
    from studyrunner.protocol import load_external_protocol
    from studyrunner.runner import RunOptions

    _check_device(device)
    try:
        loaded = load_external_protocol(protocol)
    except ProtocolError as exc:
        _fail(f"invalid protocol\n{exc}", 2)
        return
    _announce(loaded.protocol.study, f"external validation [bold]{loaded.protocol.study.name}[/] of {model}")
    spec = _cluster_spec(cluster, loaded.protocol.execution.cluster)
    run_dir = _with_progress(lambda sink: _on_cluster(
        spec, sink, lambda: validate_externally(model, loaded, RunOptions(out, device, workers, spec), sink)))
    results = json.loads((run_dir / "results.json").read_text())
    for name, block in results["external"]["models"].items():
        c = block["c_index"]
        console.print(f"{name}: n {block['n']} / events {block['n_events']}, Harrell's C {c['estimate']:.3f} "
                      f"({c['lower']:.3f}-{c['upper']:.3f}), calibration slope "
                      f"{block['calibration']['slope']['slope']:.2f}")
    for key in ("bundle", "cnn_bundle"):
        for warning in (results["external"].get(key) or {}).get("version_warnings", []):
            console.print(f"[yellow]warning[/]: {warning}")
    for name, reason in (results["external"].get("skipped") or {}).items():
        console.print(f"[yellow]not validated[/]: {name}: {reason}")
    console.print(f"report: [bold]{run_dir / 'report.pdf'}[/]\nrun folder: {run_dir}")


@app.command()
def validate(protocol: Path = typer.Argument(..., help="protocol YAML")) -> None:
    """Check the protocol and the clinical table only (no images, no statistics)."""
    import tempfile

    from studyrunner.cohort.stage import build_cohort, cohort_input_files

    loaded = _load(protocol)
    try:
        cohort_input_files(loaded)
        with tempfile.TemporaryDirectory() as tmp:
            build_cohort(loaded, Path(tmp))
            summary = json.loads((Path(tmp) / "summary.json").read_text())
            validation = json.loads((Path(tmp) / "validation.json").read_text())
            references = _dicom_reference_problems(Path(tmp) / "clinical.csv", loaded.path.parent)
    except StudyError as exc:
        _fail(str(exc), exc.exit_code)
    warnings = [e for e in validation["expectations"] if not e["success"]]
    for item in warnings:
        console.print(f"[yellow]warning[/]: {item['name']}: {item['unexpected_count']} row(s)")
    for problem in references:
        console.print(f"[yellow]warning[/]: {problem} (the case will be excluded)", highlight=False)
    console.print(f"[green]valid[/]: protocol {loaded.path.name}; clinical table {validation['n_rows']} rows, "
                  f"{len(validation['expectations'])} expectations; {summary['n_eligible']} eligible patients; "
                  f"partitions {summary['partitions']}")


def _dicom_reference_problems(clinical_csv: Path, base: Path) -> list[str]:
    """DICOM masks whose referenced series is not in the image folder (headers only, no pixel
    data), paths written relative to the protocol's folder."""
    import pandas as pd

    from studyrunner.imaging.masks import cohort_reference_problems
    from studyrunner.paths import shareable_text

    clinical = pd.read_csv(clinical_csv, dtype=str, keep_default_na=False)
    return [shareable_text(problem, base, pseudonymise_uids=False) for problem in cohort_reference_problems(clinical)]


@app.command()
def report(run_dir: Path = typer.Argument(..., help="a finished run folder")) -> None:
    """Render the report again from a finished run's results.json."""
    from studyrunner.report.render import render_report

    if not (run_dir / "results.json").is_file():
        _fail(f"{run_dir}: no results.json (is this a finished run folder?)", 2)
    console.print(f"report: {render_report(run_dir)}")


@app.command()
def schema(results: bool = typer.Option(False, "--results", help="the schema of results.json instead"),
           external: bool = typer.Option(False, "--external",
                                         help="the external-validation protocol's schema")) -> None:
    """Print the protocol's JSON Schema (protocols/schema.json is this output); with --external,
    the external-validation protocol's (protocols/external.schema.json); with --results, the
    schema of a run's results.json (protocols/results.schema.json)."""
    if external:
        typer.echo(json.dumps(json_schema(external=True), indent=2))
    elif results:
        from studyrunner.results import results_schema

        typer.echo(json.dumps(results_schema(), indent=2))
    else:
        typer.echo(json.dumps(json_schema(), indent=2))


@app.command()
def doctor(as_json: bool = typer.Option(False, "--json", help="machine-readable output")) -> None:
    """What this machine has: Python, R and each R package, CRAN stand-ins, GPU."""
    from studyrunner.environment import INSTALL_HINT, environment_report

    env = environment_report()
    missing_python = [k for k, v in env["python_packages"].items() if v is None]
    problems = missing_python + env["r_required_missing"] + ([] if env["r"] else ["R"])
    if not env["pdftotext"]:
        problems.append("poppler-utils")
    if as_json:
        report = {**env, "ok": not problems, "missing": problems, "fix": INSTALL_HINT if problems else None}
        typer.echo(json.dumps(report, indent=2))
        raise typer.Exit(1 if problems else 0)
    out = Console()
    out.print(f"studyrunner {__version__}\nPython {env['python']} ({env['platform']})")
    out.print(f"R: {env['r'] or '[red]not found[/]'}")
    table = Table(title="R packages", show_edge=False)
    for col in ("package", "version", "role"):
        table.add_column(col)
    cran = {c["package"]: c for c in env["cran_only"]}
    for name, version in env["r_packages"].items():
        if name in cran:
            shown = version or "[yellow]missing[/]"
            role = ("optional (CRAN only), used" if version
                    else f"optional (CRAN only); stand-in: {cran[name]['implementation']}")
        else:
            shown, role = version or "[red]missing[/]", "required"
        table.add_row(name, shown, role)
    out.print(table)
    gpu = env["gpu"]
    out.print(f"GPU: {', '.join(gpu['devices']) if gpu['cuda_available'] else 'no CUDA GPU visible (runs on CPU)'}"
              f"; torch {gpu['torch']}")
    if missing_python:
        out.print(f"[red]missing Python packages[/]: {', '.join(missing_python)}")
    if problems:
        out.print(f"[red]missing[/]: {', '.join(problems)}\nfix: {INSTALL_HINT}")
        raise typer.Exit(1)
    out.print("[green]ok[/]: everything required is installed")


def main() -> None:  # pragma: no cover - console entry point
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
