"""What this machine has: Python and R versions, R packages, CRAN stand-ins, GPU.

Used by ``studyrunner doctor`` and recorded in every run's manifest and report.
"""

from __future__ import annotations

import importlib.metadata
import platform
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from studyrunner.paths import repo_folder

PYTHON_PACKAGES = ["numpy", "pandas", "scipy", "SimpleITK", "pyradiomics", "torch", "rpy2", "lifelines",
                   "great_expectations", "jinja2", "weasyprint", "pydantic", "typer", "rich",
                   "matplotlib", "pyyaml", "pyarrow"]

# R packages from Debian that the statistics need (`make install` installs them).
R_REQUIRED = ["survival", "MASS", "maxstat", "glmnet", "gbm", "ranger", "riskRegression", "pec",
              "rms", "timereg", "prodlim", "psych", "pROC"]


@dataclass(frozen=True)
class CranStandIn:
    package: str
    method: str
    stand_in: str
    rscript: str  # the in-project implementation, under rscripts/


# Packages only CRAN carries: used when installed, otherwise the in-project R implementation
# of the same published method runs, and the run records which one did.
CRAN_ONLY = [
    CranStandIn("timeROC", "time-dependent ROC, IPCW cumulative/dynamic AUC (Blanche et al., Stat Med 2013)",
                "studyrunner IPCW estimator", "timeroc.R"),
    CranStandIn("randomForestSRC", "random survival forest (Ishwaran et al., Ann Appl Stat 2008)",
                "ranger survival forest with permutation importance", "survival_forest.R"),
    CranStandIn("CoxBoost", "likelihood-based componentwise boosting (Binder & Schumacher, BMC Bioinf 2008)",
                "studyrunner componentwise Cox boosting", "coxboost.R"),
    CranStandIn("superpc", "supervised principal components (Bair & Tibshirani, PLoS Biol 2004)",
                "studyrunner supervised PCs", "superpc.R"),
]

INSTALL_HINT = "make install   (as root, from the repository: installs R, the Debian r-cran-* packages and the venv)"


def package_versions(names: Iterable[str]) -> dict[str, str | None]:
    """The installed version of each distribution (None when it is not installed)."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def r_installation() -> dict:
    """R version and each package's version (None when missing), asked of R itself."""
    if shutil.which("Rscript") is None:
        return {"r": None, "packages": dict.fromkeys(R_REQUIRED + [c.package for c in CRAN_ONLY])}
    from studyrunner.rbridge import r_versions

    info = r_versions(R_REQUIRED + [c.package for c in CRAN_ONLY])
    return {"r": info["r"], "packages": info["packages"]}


def cran_status(r_packages: dict[str, str | None]) -> list[dict]:
    """For each CRAN-only package: installed (used) or the stand-in that runs instead."""
    rows = []
    for item in CRAN_ONLY:
        version = r_packages.get(item.package)
        has_stand_in = (repo_folder("rscripts", "STUDYRUNNER_RSCRIPTS") / item.rscript).exists()
        if version:
            status, implementation = "installed", f"{item.package} {version}"
        elif has_stand_in:
            status, implementation = "missing", f"{item.stand_in} (rscripts/{item.rscript})"
        else:
            status, implementation = "missing", "no stage of this version uses it yet"
        rows.append({**asdict(item), "status": status, "implementation": implementation})
    return rows


def gpu_info() -> dict:
    try:
        import torch
    except ImportError:
        return {"cuda_available": False, "devices": [], "torch": None}
    available = torch.cuda.is_available()
    devices = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if available else []
    return {"cuda_available": available, "devices": devices, "torch": torch.__version__,
            "cuda_build": torch.version.cuda}


def environment_report() -> dict:
    r = r_installation()
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "python_packages": package_versions(PYTHON_PACKAGES),
        "r": r["r"],
        "r_packages": r["packages"],
        "r_required_missing": [p for p in R_REQUIRED if not r["packages"].get(p)],
        "cran_only": cran_status(r["packages"]),
        "gpu": gpu_info(),
        "pdftotext": shutil.which("pdftotext") is not None,
    }


def git_revision() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(repo_folder(".", "STUDYRUNNER_REPO")), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, encoding="utf-8", timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
