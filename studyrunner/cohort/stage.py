"""Cohort stage: clinical table (mapped, validated, eligibility) + image manifest or feature table + split.

Outputs in the stage folder:
- ``clinical.csv``: the mapped clinical table of eligible patients with ``partition`` and
  the image paths (absolute) from the manifest;
- ``validation.json``: the Great Expectations result;
- ``exclusions.json``: every patient excluded here, with the reason;
- ``summary.json``: counts and the value-mapping report.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from studyrunner.cohort.clinical_table import (
    Rule,
    apply_eligibility,
    apply_value_mappings,
    coerce_columns,
    read_clinical_table,
)
from studyrunner.cohort.expectations import ClinicalRoles, validate_clinical_table
from studyrunner.cohort.split import split_cohort
from studyrunner.errors import ClinicalValidationFailed, InputError
from studyrunner.imaging.structure import STRUCTURE_COLUMN, StructureSelector
from studyrunner.protocol import NO_SPLIT_PARTITION, AnyLoaded, TimeToEventEndpoint
from studyrunner.run_folder import write_json

IMAGE_COLUMNS = ("image", "mask", "mask_reader2")


def cohort_input_files(loaded: AnyLoaded, on_generate: Callable[[str], None] = lambda text: None) -> list[Path]:
    """The files whose content defines the cohort (materialising a synthetic cohort first)."""
    cohort = loaded.protocol.cohort
    sources = {"clinical_table": cohort.clinical_table, "image_manifest": cohort.image_manifest,
               "feature_table": cohort.feature_table, "feature_table_second_reader": cohort.feature_table_second_reader}
    paths = {key: loaded.resolve(value) for key, value in sources.items() if value}
    if cohort.synthetic_source and not all(p.exists() for p in paths.values()):
        on_generate(f"generating the SYNTHETIC cohort ({cohort.synthetic_source.n_patients} patients) "
                    f"into {paths['clinical_table'].parent}")
        materialise_synthetic_cohort(loaded)
    for key, path in paths.items():
        if not path.is_file():
            raise InputError(f"{loaded.path}: cohort.{key}: file {path} not found")
    return [*paths.values(), loaded.resolve(cohort.validation.suite)]


def materialise_synthetic_cohort(loaded: AnyLoaded) -> None:
    """Generate the protocol's synthetic cohort where its clinical table is expected."""
    from studyrunner.synthetic import GENERATORS

    source = loaded.protocol.cohort.synthetic_source
    assert source is not None
    out_dir = loaded.resolve(loaded.protocol.cohort.clinical_table).parent
    site = {"site": source.site} if source.site != "development" else {}
    GENERATORS[source.generator](out_dir, n_patients=source.n_patients, seed=source.seed, **site)


def read_predictor_index(loaded: AnyLoaded) -> tuple[pd.DataFrame, str]:
    """Patients that have predictors, and how that is said when one has none: the image
    manifest (with absolute image paths) or the ids of the feature table."""
    cohort = loaded.protocol.cohort
    if cohort.image_manifest:
        return read_manifest(loaded.resolve(cohort.image_manifest), loaded), "no images in the image manifest"
    assert cohort.feature_table is not None  # the protocol gives exactly one of image_manifest, feature_table
    path = loaded.resolve(cohort.feature_table)
    ids = pd.read_csv(path, dtype=str, usecols=[cohort.id_column]) if cohort.id_column in _header(path) else None
    if ids is None:
        raise InputError(f"{path}: the feature table has no id column {cohort.id_column!r}")
    return ids.rename(columns={cohort.id_column: "patient_id"}), "no row in the feature table"


def _header(path: Path) -> list[str]:
    return list(pd.read_csv(path, nrows=0).columns)


def read_manifest(path: Path, loaded: AnyLoaded) -> pd.DataFrame:
    """The image manifest with canonical columns patient_id, image, mask[, mask_reader2]
    holding absolute paths (paths in the manifest are relative to the manifest's folder)."""
    columns = loaded.protocol.cohort.manifest_columns
    wanted = {"patient_id": columns.id, "image": columns.image, "mask": columns.mask}
    if columns.second_reader_mask:
        wanted["mask_reader2"] = columns.second_reader_mask
    if columns.structure:
        wanted[STRUCTURE_COLUMN] = columns.structure
    manifest = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [col for col in wanted.values() if col not in manifest.columns]
    if missing:
        raise InputError(f"{path}: column(s) {missing} named in cohort.manifest_columns are not in the manifest "
                         f"(columns: {list(manifest.columns)})")
    manifest = manifest[list(wanted.values())].rename(columns={v: k for k, v in wanted.items()})
    duplicated = manifest[manifest["patient_id"].duplicated()]
    if len(duplicated):
        line = int(duplicated.index[0]) + 2
        patient = duplicated["patient_id"].iloc[0]
        raise InputError(f"{path}:{line}: column {columns.id}: patient id {patient!r} appears twice")
    for col in IMAGE_COLUMNS:
        if col in manifest:
            manifest[col] = [str((path.parent / v).resolve()) if v else "" for v in manifest[col]]
    return _with_structures(manifest, loaded)


def _with_structures(manifest: pd.DataFrame, loaded: AnyLoaded) -> pd.DataFrame:
    """The column ``mask_structure`` as the selector of each case's DICOM-mask structure in
    text (:class:`StructureSelector`): the manifest's structure cell, else the protocol's
    ``cohort.mask_structure``; left out when the protocol gives neither."""
    cohort = loaded.protocol.cohort
    spec = cohort.mask_structure
    if spec is None and cohort.manifest_columns.structure is None:
        return manifest
    default = StructureSelector(tuple(spec.roi_names), spec.segment) if spec else None
    cells = manifest[STRUCTURE_COLUMN] if STRUCTURE_COLUMN in manifest else [""] * len(manifest)
    selectors = [StructureSelector.from_manifest_cell(cell) or default for cell in cells]
    manifest[STRUCTURE_COLUMN] = [selector.to_text() if selector else "" for selector in selectors]
    return manifest


def clinical_roles(loaded: AnyLoaded, manifest_ids: list[str]) -> ClinicalRoles:
    protocol = loaded.protocol
    tte = protocol.time_to_event_endpoints()
    categorical = {v.column: list(v.levels) for v in protocol.cohort.baseline_variables
                   if v.type == "categorical" and v.levels}
    for endpoint in protocol.endpoints.values():
        if not isinstance(endpoint, TimeToEventEndpoint):
            categorical[endpoint.column] = list(endpoint.levels)
    return ClinicalRoles(
        id=protocol.cohort.id_column,
        endpoints={name: (e.time, e.event) for name, e in tte.items()},
        paired_endpoints=[(name, e.not_after) for name, e in tte.items() if e.not_after],
        age=protocol.cohort.validation.age_column,
        categorical=categorical,
        manifest_ids=manifest_ids,
    )


def numeric_columns(loaded: AnyLoaded) -> list[str]:
    """Columns that must hold numbers: endpoint times and events, continuous baseline variables."""
    protocol = loaded.protocol
    columns = [c for e in protocol.time_to_event_endpoints().values() for c in (e.time, e.event)]
    columns += [v.column for v in protocol.cohort.baseline_variables if v.type == "continuous"]
    if protocol.cohort.validation.age_column:
        columns.append(protocol.cohort.validation.age_column)
    return list(dict.fromkeys(columns))


def build_cohort(loaded: AnyLoaded, stage_dir: Path) -> None:
    """Run the cohort stage into ``stage_dir`` (see the module docstring)."""
    protocol = loaded.protocol
    cohort = protocol.cohort
    clinical_path = loaded.resolve(cohort.clinical_table)
    clinical = read_clinical_table(clinical_path, cohort.id_column)
    clinical = coerce_columns(clinical, [c for c in numeric_columns(loaded) if c in clinical.columns], clinical_path)
    clinical, mapping_report = apply_value_mappings(clinical, cohort.value_mappings)
    predictor_index, no_predictors = read_predictor_index(loaded)

    roles = clinical_roles(loaded, predictor_index["patient_id"].tolist())
    validation = validate_clinical_table(clinical, loaded.resolve(cohort.validation.suite), roles,
                                         dict(cohort.validation.severities))
    write_json(stage_dir / "validation.json", validation.to_dict())
    if not validation.success:
        raise ClinicalValidationFailed(
            f"{clinical_path}: the clinical table failed its validation suite; failing rows:\n"
            f"{validation.failure_table()}\n"
            "Correct the table, or mark the expectation a warning in cohort.validation.severities.")

    eligible, exclusions = apply_eligibility(clinical, [Rule(**r.model_dump()) for r in cohort.inclusion],
                                             [Rule(**r.model_dump()) for r in cohort.exclusion], cohort.id_column)
    without_predictors = eligible[~eligible[cohort.id_column].isin(predictor_index["patient_id"])]
    exclusions += [{"patient_id": pid, "stage": "eligibility", "reason": no_predictors}
                   for pid in without_predictors[cohort.id_column]]
    eligible = eligible[eligible[cohort.id_column].isin(predictor_index["patient_id"])]

    split = cohort.split
    table = eligible.reset_index(drop=True)
    if split.method == "none":
        table["partition"] = NO_SPLIT_PARTITION
    else:
        partitions = split_cohort(eligible, cohort.id_column, method=split.method, counts=split.counts,
                                  fractions=split.fractions, stratify_on=split.stratify_on,
                                  site_column=split.site_column, site_map=split.sites, seed=protocol.study.seed)
        table["partition"] = table[cohort.id_column].map(partitions)
    table = table.merge(predictor_index, left_on=cohort.id_column, right_on="patient_id", how="left",
                        suffixes=("", "_manifest"))
    if cohort.id_column != "patient_id":
        table = table.drop(columns=["patient_id"]).rename(columns={cohort.id_column: "patient_id"})
    table.to_csv(stage_dir / "clinical.csv", index=False)
    write_json(stage_dir / "exclusions.json", exclusions)
    write_json(stage_dir / "summary.json", {
        "n_clinical": len(clinical),
        "n_with_predictors": len(predictor_index),
        "n_with_images": int(clinical[cohort.id_column].isin(predictor_index["patient_id"]).sum()),
        "predictors_without_clinical": sorted(set(predictor_index["patient_id"]) - set(clinical[cohort.id_column])),
        "n_eligible": len(table),
        "partitions": table["partition"].value_counts().reindex(split.partitions, fill_value=0).to_dict(),
        "value_mappings": {column: report.to_dict() for column, report in mapping_report.items()},
    })
