"""Radiomics features with PyRadiomics (van Griethuysen et al., Cancer Res 2017).

``parameters``: the parameter dict, its YAML file and the extractor it builds;
``preprocessing``: the image resampled once per case; ``binning``: PyRadiomics' bin edges
from the ROI's extremes, in a scope; ``execution``: features of one image and its masks;
``cache``: the per-case cache files; ``workers``: cases in this process or a process pool;
``cohort_extraction``: the cohort's feature tables; ``stage``: the pipeline stage;
``feature_table``: a study started from an existing feature table.
"""

from studyrunner.radiomics.cohort_extraction import extract_cohort
from studyrunner.radiomics.execution import extract_case, extract_masks
from studyrunner.radiomics.parameters import radiomics_params, write_params_file

__all__ = ["extract_case", "extract_cohort", "extract_masks", "radiomics_params", "write_params_file"]
