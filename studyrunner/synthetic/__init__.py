"""SYNTHETIC cohorts for demonstrations and tests: CT-like crops with known lesion phenotypes
and clinical tables with a known survival model. Nothing here comes from a patient."""

from collections.abc import Callable

from studyrunner.synthetic.common import CohortFiles, oracle_concordance
from studyrunner.synthetic.escc import generate_escc_cohort, simulate_escc
from studyrunner.synthetic.nsclc_ici import (
    GENERATOR_VERSION,
    SimulatedCohort,
    generate_nsclc_ici_cohort,
    simulate_nsclc_ici,
)
from studyrunner.synthetic.phantom import LesionParams, make_case, max_volume_ml

# protocol `cohort.synthetic_source.generator` -> function(out_dir, n_patients=, seed=)
GENERATORS: dict[str, Callable[..., CohortFiles]] = {
    "nsclc_ici": generate_nsclc_ici_cohort,
    "escc_ici_chemo": generate_escc_cohort,
}

__all__ = [
    "GENERATORS",
    "GENERATOR_VERSION",
    "CohortFiles",
    "LesionParams",
    "SimulatedCohort",
    "generate_escc_cohort",
    "generate_nsclc_ici_cohort",
    "make_case",
    "max_volume_ml",
    "oracle_concordance",
    "simulate_escc",
    "simulate_nsclc_ici",
]
