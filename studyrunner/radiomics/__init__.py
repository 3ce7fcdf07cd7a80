"""Radiomics features with PyRadiomics (van Griethuysen et al., Cancer Res 2017)."""

from studyrunner.radiomics.extraction import (
    extract_case,
    extract_cohort,
    radiomics_params,
    write_params_file,
)

__all__ = ["extract_case", "extract_cohort", "radiomics_params", "write_params_file"]
