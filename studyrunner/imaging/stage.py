"""Images stage: read every included case with SimpleITK and check image/mask geometry.

A case whose image cannot be read, whose mask does not match the image grid, or whose mask
is empty is excluded with its reason; the study goes on with the others. A bad second
segmentation only keeps the case out of the reproducibility analysis (``mask2_problems``).

Outputs: ``cases.csv`` (one row per case: ok, problems, size, spacing, tumour volume and
3D maximum diameter) and ``exclusions.json``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from studyrunner.imaging.geometry import load_case
from studyrunner.imaging.structure import STRUCTURE_COLUMN, StructureSelector
from studyrunner.run_folder import write_json

Progress = Callable[[int, int], None]


def check_images(clinical: pd.DataFrame, stage_dir: Path, label: int, tolerance: float,
                 progress: Progress | None = None) -> None:
    """Load each case of the cohort table (columns patient_id, image, mask[, mask_reader2])."""
    rows, exclusions = [], []
    has_second = "mask_reader2" in clinical.columns
    for i, case in enumerate(clinical.itertuples(index=False), start=1):
        reader2 = case.mask_reader2 if has_second else None
        second = Path(reader2) if isinstance(reader2, str) and reader2 else None
        result = load_case(case.patient_id, Path(case.image), Path(case.mask), second,
                           label=label, tolerance=tolerance,
                           structure=StructureSelector.from_text(getattr(case, STRUCTURE_COLUMN, None)))
        rows.append({"patient_id": case.patient_id, "ok": result.ok, "problems": "; ".join(result.problems),
                     "mask2_problems": "; ".join(result.mask2_problems),
                     **{k: _flat(v) for k, v in result.info.items()}})
        if not result.ok:
            exclusions.append({"patient_id": case.patient_id, "stage": "images",
                               "reason": "; ".join(result.problems)})
        if progress:
            progress(i, len(clinical))
    pd.DataFrame(rows).to_csv(stage_dir / "cases.csv", index=False)
    write_json(stage_dir / "exclusions.json", exclusions)


def _flat(value: object) -> object:
    """Tuples such as spacing become 'a x b x c' strings in the CSV."""
    if isinstance(value, (tuple, list)):
        return " x ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return value
