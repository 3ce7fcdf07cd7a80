"""Reading CT volumes and masks, and checking that they share one grid."""

from studyrunner.imaging.geometry import CaseLoadResult, check_geometry, load_case, max_diameter_mm
from studyrunner.imaging.io import ImageReadError, read_image

__all__ = [
    "CaseLoadResult",
    "ImageReadError",
    "check_geometry",
    "load_case",
    "max_diameter_mm",
    "read_image",
]
