"""Which structure of a DICOM mask is the tumour, and the error a DICOM mask raises.

A DICOM RTSTRUCT (PS3.3 A.19) holds several ROIs, each with a name (Structure Set ROI
Sequence, ROIName (3006,0026)); a DICOM-SEG (PS3.3 A.51) holds several segments, each with
a number (SegmentNumber (0062,0004)) and a label (SegmentLabel (0062,0005)). The protocol
(``cohort.mask_structure``) gives a default :class:`StructureSelector`; a manifest column
(``cohort.manifest_columns.structure``) may give one per case. The selector travels through
the cohort table as text (:meth:`StructureSelector.to_text`, column ``mask_structure``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from studyrunner.imaging.io import ImageReadError

# Cohort-table column holding the selector of a case's masks (absent: no selector).
STRUCTURE_COLUMN = "mask_structure"
# Separator of the ROI-name synonyms in a manifest cell ("GTV-1|GTVp|gtv").
SYNONYM_SEPARATOR = "|"


class MaskReadError(ImageReadError):
    """A DICOM mask could not be turned into a mask on the image grid (``reason`` says why,
    naming the DICOM attribute; never a patient's name, id, birth date or accession number)."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        Exception.__init__(self, f"cannot read mask {self.path}: {reason}")


@dataclass(frozen=True)
class StructureSelector:
    """The tumour's structure: RTSTRUCT ROI names tried in order (case-insensitive, the
    first name some ROI carries wins) and a DICOM-SEG segment (its number, or its label
    compared case-insensitively). Empty: the file must hold exactly one ROI or segment."""

    roi_names: tuple[str, ...] = ()
    segment: int | str | None = None

    def to_text(self) -> str:
        """The canonical one-line JSON form stored in the cohort table."""
        return json.dumps({"roi_names": list(self.roi_names), "segment": self.segment}, sort_keys=True)

    @classmethod
    def from_text(cls, text: object) -> StructureSelector | None:
        """The selector of :meth:`to_text`; None for an empty cell (pandas reads it as NaN)."""
        if not isinstance(text, str) or not text.strip():
            return None
        data = json.loads(text)
        return cls(tuple(data.get("roi_names") or ()), data.get("segment"))

    @classmethod
    def from_manifest_cell(cls, cell: str) -> StructureSelector | None:
        """A manifest cell: ROI-name synonyms separated by ``|`` (``GTV-1|GTVp|gtv``) for an
        RTSTRUCT, a segment number (``2``) or label for a SEG; one cell serves either file
        type. None for an empty cell."""
        names = tuple(name.strip() for name in cell.split(SYNONYM_SEPARATOR) if name.strip())
        if not names:
            return None
        segment: int | str = int(names[0]) if len(names) == 1 and names[0].isdigit() else names[0]
        return cls(names, segment)

    def describe(self) -> str:
        parts = []
        if self.roi_names:
            parts.append(f"ROI names {list(self.roi_names)}")
        if self.segment is not None:
            parts.append(f"segment {self.segment!r}")
        return ", ".join(parts) or "no structure named"
