"""Typed, frozen configurations: one per stage. Their JSON form goes into every output's provenance."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

SOURCES: tuple[str, ...] = ("cmu", "hdm05", "poseprior", "bvh", "h36m")


@dataclass(frozen=True)
class ViewConfig:
    """How the random virtual cameras of the bank are drawn (per pose, independent of everything else)."""

    views: int = 20  # virtual cameras per pose
    elevation_min_deg: float = -15.0  # camera below the body centre looking up (negative) ...
    elevation_max_deg: float = 45.0  # ... to above it looking down, as photos of people are taken
    roll_max_deg: float = 15.0  # roll uniform in [-roll_max, +roll_max] about the optical axis
    # Azimuth is always uniform over [0, 360) degrees: people face every direction.

    def __post_init__(self) -> None:
        if self.views < 1:
            raise ValueError(f"views must be at least 1, got {self.views}")
        if not -90.0 <= self.elevation_min_deg <= self.elevation_max_deg <= 90.0:
            raise ValueError(
                f"need -90 <= elevation min <= max <= 90 degrees, got {self.elevation_min_deg}, {self.elevation_max_deg}"
            )
        if not 0.0 <= self.roll_max_deg <= 180.0:
            raise ValueError(f"roll max must be in [0, 180] degrees, got {self.roll_max_deg}")


@dataclass(frozen=True)
class BankConfig:
    """Configuration of `posebank build-bank`.

    `sources` pairs a source name (cmu|hdm05|poseprior|bvh|h36m) with the dataset folder as distributed.
    """

    sources: tuple[tuple[str, str], ...] = ()  # ((source, path), ...) in the order given
    out: str = "bank"  # output directory
    skeleton: str = "j13"  # canonical joint set: j13 (LCR-Net) or j17 (adds pelvis, spine, thorax, neck)
    fps: float = 30.0  # resample MoCap sequences to this rate before deduplication (nearest frames)
    dedup_mm: float = 20.0  # drop a pose within this mean per-joint distance (mm) of a kept pose
    seed: int = 0  # seeds the virtual views; same inputs + seed -> same bank
    view: ViewConfig = field(default_factory=ViewConfig)
    poses_per_shard: int = 25_000  # poses per Parquet file (rows = poses x views)
    workers: int = 1  # parallel processes reading files, 0 or 1: in this process (does not change the output)
    skip_bad: bool = False  # skip unreadable files (listed in the manifest) instead of failing
    subjects: tuple[str, ...] = ()  # keep only motions of these subjects (e.g. Human3.6M S1, S5); () keeps all
    # Pose Prior: put back the thorax bone its release lacks (its torsos are 0.40 m, CMU's 0.51; mocap/poseprior.py)
    poseprior_thorax: bool = True

    def __post_init__(self) -> None:
        if self.fps < 0 or self.dedup_mm < 0:
            raise ValueError(f"fps and dedup_mm must be >= 0, got {self.fps}, {self.dedup_mm}")
        if self.poses_per_shard < 1 or self.workers < 0:
            raise ValueError(f"poses_per_shard must be >= 1 and workers >= 0, got {self.poses_per_shard}, {self.workers}")

    def job_identity(self) -> dict[str, Any]:
        """What defines the bank's content: everything but the output folder and the worker count."""
        d = to_dict(self)
        for k in ("out", "workers"):
            d.pop(k)
        if not self.subjects:  # absent when unused, so banks built before the field existed keep their identity
            d.pop("subjects")
        if not any(source == "poseprior" for source, _ in self.sources):  # as for subjects: only where it acts
            d.pop("poseprior_thorax")
        return d


def to_dict(config: Any) -> dict[str, Any]:
    """A config dataclass (or a dict) as plain JSON-able data (tuples become lists)."""
    data = config if isinstance(config, dict) else dataclasses.asdict(config)
    return json.loads(json.dumps(data))


def to_json(config: Any) -> str:
    """Canonical JSON of a config (sorted keys), as stored in Parquet metadata and manifests."""
    return json.dumps(to_dict(config), sort_keys=True)
