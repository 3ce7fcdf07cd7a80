"""Names shared by several stages, each defined once.

The protocol schema, the R calls, results.json and the report all speak of the same
learners, cut-off methods, maxstat p-value methods and time points. Each is declared here,
with what every user of the name needs (R function, package, display label, citation), so
adding a learner or a p-value method is one entry in this file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

# --------------------------------------------------------------------------- learners


@dataclass(frozen=True)
class LearnerInfo:
    """One feature-selection learner of a radiomics-signature study (escc_ici_chemo).

    ``name`` is the key in the protocol and in results.json; ``r_function`` the function of
    ``rscripts/learners.R``; ``package`` the R package the learner is named after (CRAN-only
    packages are replaced by an in-project implementation of the same method when missing,
    see ``environment.CRAN_ONLY``); ``inner_folds``: the R function takes ``nfolds``.
    """

    name: str
    label: str
    r_function: str
    package: str
    method: str
    inner_folds: bool


LearnerName = Literal["elastic_net", "lasso", "coxboost", "gbm", "rsf", "superpc"]

LEARNERS: dict[str, LearnerInfo] = {info.name: info for info in (
    LearnerInfo("elastic_net", "Elastic net", "select_elastic_net", "glmnet",
                "elastic-net penalised Cox regression (Simon et al., J Stat Softw 2011)", True),
    LearnerInfo("lasso", "Lasso", "select_lasso", "glmnet",
                "lasso penalised Cox regression (Tibshirani, Stat Med 1997)", True),
    LearnerInfo("coxboost", "CoxBoost", "select_coxboost", "CoxBoost",
                "likelihood-based componentwise boosting (Binder & Schumacher, BMC Bioinformatics 2008)", True),
    LearnerInfo("gbm", "GBM", "select_gbm", "gbm",
                "gradient boosting machine with the Cox partial likelihood (Ridgeway; Friedman, Ann Stat 2001)", True),
    LearnerInfo("rsf", "Random survival forest", "select_rsf", "randomForestSRC",
                "random survival forest (Ishwaran et al., Ann Appl Stat 2008)", False),
    LearnerInfo("superpc", "SuperPC", "select_superpc", "superpc",
                "supervised principal components (Bair & Tibshirani, PLoS Biol 2004)", True),
)}
LEARNER_NAMES: tuple[str, ...] = tuple(LEARNERS)
assert get_args(LearnerName) == LEARNER_NAMES, "LearnerName and LEARNERS list the same learners"


def learner_label(name: str) -> str:
    """Display name of a learner (an unknown name is shown as recorded, capitalised)."""
    info = LEARNERS.get(name)
    return info.label if info else name.replace("_", " ").capitalize()


# --------------------------------------------------------------------------- cut-offs


CutoffMethod = Literal["xtile", "maxstat", "training_median"]
SignatureCutoffMethod = Literal["training_median", "maxstat"]
"""The cut-offs of a radiomics signature's risk score (the X-tile scan is for the CNN scores)."""

CUTOFF_METHODS: dict[str, str] = {
    "xtile": "X-tile: the cut-off with the largest log-rank statistic over the training scores "
             "(Camp, Dolled-Filhart & Rimm, Clin Cancer Res 2004)",
    "maxstat": "maximally selected log-rank statistic on the training scores (Lausen & Schumacher, Biometrics 1992)",
    "training_median": "the median of the training scores",
}
assert tuple(CUTOFF_METHODS) == get_args(CutoffMethod)
assert set(get_args(SignatureCutoffMethod)) <= set(CUTOFF_METHODS)

# How the report names each cut-off method (``label`` of a cut-off record; ``method`` is the key).
CUTOFF_LABELS: dict[str, str] = {"xtile": "X-tile best split (maximal log-rank chi-square)", "maxstat": "maxstat",
                                 "training_median": "training median"}


# --------------------------------------------------------------------------- maxstat p-values


MaxstatPmethod = Literal["Lau94", "Lau92", "HL", "exactGauss", "condMC"]
"""maxstat::maxstat.test's ``pmethod``: how the p-value of a maximally selected statistic is
corrected for the search over cut-offs."""

MAXSTAT_PMETHODS: dict[str, str] = {
    "Lau94": "the improved Bonferroni inequality of Lausen, Sauerbrei & Schumacher (1994)",
    "Lau92": "the asymptotic Brownian-bridge approximation of Lausen & Schumacher (1992)",
    "HL": "the conditional approximation of Hothorn & Lausen (2003)",
    "exactGauss": "the exact Gaussian approximation of Hothorn & Lausen (2003)",
    "condMC": "conditional Monte-Carlo (Hothorn & Lausen 2003)",
}
assert tuple(MAXSTAT_PMETHODS) == get_args(MaxstatPmethod)


# --------------------------------------------------------------------------- time points


UNIT_DAYS = {"days": 1.0, "months": 365.25 / 12.0, "years": 365.25}
"""Each time unit of an endpoint in days (a month is 365.25 / 12 days)."""


def unit_factor(from_unit: str, to_unit: str) -> float:
    """Multiply a time in ``from_unit`` by this to express it in ``to_unit``."""
    return UNIT_DAYS[from_unit] / UNIT_DAYS[to_unit]


def time_key(t: float) -> str:
    """The key of time ``t`` in results.json's per-time records: ``"1"`` for 1.0, ``"365.25"``
    otherwise. Every writer and every reader of such a key uses this function."""
    t = float(t)
    return str(int(t)) if t.is_integer() else repr(t)


# --------------------------------------------------------------------------- CNN score names


def score_name(endpoint: str) -> str:
    """The CNN risk score of a survival endpoint: ``os`` -> ``osrs`` (the paper's OSRS)."""
    return f"{endpoint}rs"


def fused_name(endpoint: str) -> str:
    """The fused multi-endpoint score for ``endpoint``: ``os`` -> ``mosrs`` (the paper's MOSRS)."""
    return f"m{endpoint}rs"


def score_label(name: str) -> str:
    """How the report prints a score name: ``mosrs`` -> ``MOSRS``."""
    return name.upper()
