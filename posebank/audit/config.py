"""AuditConfig: what `posebank audit` reads, what it computes and where it writes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AuditConfig:
    """Configuration of `posebank audit`. Every field is a CLI flag of the same name (dashes)."""

    paths: tuple[str, ...] = ()  # banks, anchor tables and annotation shards/folders, recognised by their metadata
    out: str = "audit"  # output folder: audit.json, index.html, *.png, flagged-*.csv
    images_root: str | None = None  # dataset images (the annotations' `image` column is relative to it)
    anchors: str | None = None  # anchors.parquet (or its folder): class usage of the annotated poses
    compare_bank: str | None = None  # a second bank: re-match the annotations against it, report the change
    worst: int = 12  # worst matches (and suspected swaps) drawn per dataset
    listed: int = 1000  # flagged people listed per flag in audit.json (all of them go to flagged-*.csv)
    coverage_sample: int = 20_000  # poses per source (seeded) for the pose-space coverage
    coverage_candidates: int = 8  # L2-nearest candidates re-ranked by mean per-joint distance
    coverage_thresholds_mm: tuple[float, ...] = (50.0, 100.0)  # "farther than" shares reported per source pair
    rigid_std_m: float = 0.01  # flag a subject whose rigid bone's length varies more than this (m, std)
    batch_rows: int = 262_144  # rows read per batch (bounds memory)
    engine: str = "auto"  # search engine for --compare-bank (posebank.search)
    seed: int = 0  # seeds the coverage samples (hash of pose_id and seed: independent of the read order)
