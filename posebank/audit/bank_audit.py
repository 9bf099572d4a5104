"""Audit of a bank: poses and views per source and subject, the deduplication rate, bone-length
spread per subject, and pose-space coverage between sources.

One pass over the shards in batches (never the whole bank in memory): counts come from the
(source, subject, sequence) runs of each batch, bone lengths are running moments per subject over
the rows of view 0 (one row per pose: views rotate a pose and do not change its lengths), and the
coverage sample of each source is the set of view-0 poses of smallest seeded hash of their pose_id.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from ..bank import Bank
from ..progress import ProgressFactory, no_progress
from ..skeleton import Skeleton
from .bones import BoneTable, bone_lengths, bone_table, check_subject
from .config import AuditConfig
from .coverage import body_frame_poses, coverage_2d_report, coverage_report
from .numeric import BottomK, GroupedMoments, hash_keys, run_starts

COVERAGE_MEANING = (
    "For each pair of sources A -> B: the mean per-joint distance (mm) from each sampled pose of A to "
    "its nearest sampled pose of B, both in their own body frame (view and heading removed). A -> A "
    "is leave-one-out: the spacing of A's own sample. A pose of A much farther from B than B's own "
    "spacing is a pose B lacks; 'added' gives, per source, the share of its poses farther than each "
    "threshold from the reference source (CMU when present). Samples are seeded subsets, so with a "
    "source larger than its sample the distances are upper bounds."
)

_COLUMNS = ("source", "subject", "sequence", "view_id", "pose_id", "pose_3d", "pose_2d", "azimuth_deg", "elevation_deg")
AZIMUTH_EDGES_DEG = np.arange(0.0, 361.0, 15.0)  # views draw azimuths in [0, 360)
ELEVATION_EDGES_DEG = np.arange(-90.0, 91.0, 5.0)


def _one_shard(bank: Bank, shard: dict[str, Any]) -> Bank:
    """The bank restricted to one shard (so progress can count shards)."""
    return dataclasses.replace(bank, manifest={**bank.manifest, "shards": [shard]})


def _counts_by_run(source: np.ndarray, subject: np.ndarray, sequence: np.ndarray, view0: np.ndarray,
                   rows: dict[tuple[str, str], int], poses: dict[tuple[str, str], int],
                   sequences: dict[tuple[str, str], set[str]]) -> None:  # fmt: skip
    starts = run_starts(source, subject, sequence)
    ends = np.r_[starts[1:], len(source)]
    cum_view0 = np.r_[0, np.cumsum(view0)]
    for s, e in zip(starts, ends):
        key = (str(source[s]), str(subject[s]))
        rows[key] = rows.get(key, 0) + int(e - s)
        poses[key] = poses.get(key, 0) + int(cum_view0[e] - cum_view0[s])
        sequences.setdefault(key, set()).add(str(sequence[s]))


def audit_bank(bank: Bank, config: AuditConfig, progress: ProgressFactory | None = None) -> dict[str, Any]:
    """Every bank figure as plain data (JSON-able); see the module docstring for what is computed.

    Returns:
        {"path", "rows", "skeleton", "sources": {source: {...}}, "subjects": [...], "bones": {...},
         "flagged_subjects": [...], "coverage": {...}}. Lengths in metres, distances in mm.
    """
    skeleton = bank.skeleton
    table = bone_table(skeleton)
    tally = _Tally(GroupedMoments(dims=len(table.names)))
    shards = list(bank.manifest["shards"])
    progress = progress or no_progress
    for shard in progress(shards, f"auditing bank {bank.root.name}", len(shards)):
        for batch in _one_shard(bank, shard).iter_poses(columns=_COLUMNS, batch_size=config.batch_rows):
            tally.add_views(batch, config)
            tally.add_poses(batch, table, config)
    subjects, flagged = _subjects(tally, table, config)
    coverage, coverage_2d = _coverage(tally, skeleton, config, progress)
    return {
        "path": str(bank.root),
        "skeleton": skeleton.name,
        "rows": int(sum(tally.rows.values())),
        "shards": len(bank.shard_paths),
        "skipped_inputs": len(bank.manifest.get("skipped", [])),
        "sources": _sources(bank.manifest.get("stats", {}), tally, subjects),
        "subjects": subjects,
        "bones": {"names": list(table.names), "rigid": table.rigid.tolist(),
                  "low_m": [None if np.isnan(v) else float(v) for v in table.low_m],
                  "high_m": [None if np.isnan(v) else float(v) for v in table.high_m],
                  "rigid_std_limit_m": config.rigid_std_m},
        "flagged_subjects": flagged,
        "coverage": coverage,
        "coverage_2d": coverage_2d,
        "viewpoints": _viewpoints(tally, bank),
    }


@dataclass
class _Tally:
    """What audit_bank gathers in one pass over the shards, keyed by (source, subject) or source.

    Attributes:
        moments: bone-length moments per (source, subject) group code (`codes`), view 0 rows only.
        rows / poses / sequences: rows, poses (view 0 rows) and sequence names per (source, subject).
        codes: (source, subject) -> group code in `moments`, for subjects with at least one pose.
        samples: per source, a seeded sample of 3D poses (view 0); samples_2d: of (pose, view) 2D rows,
            what the 2D matching sees.
        azimuth / elevation: per source, view counts in AZIMUTH_EDGES_DEG / ELEVATION_EDGES_DEG bins.
    """

    moments: GroupedMoments
    rows: dict[tuple[str, str], int] = field(default_factory=dict)
    poses: dict[tuple[str, str], int] = field(default_factory=dict)
    sequences: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    codes: dict[tuple[str, str], int] = field(default_factory=dict)
    samples: dict[str, BottomK] = field(default_factory=dict)
    samples_2d: dict[str, BottomK] = field(default_factory=dict)
    azimuth: dict[str, npt.NDArray[np.int64]] = field(default_factory=dict)
    elevation: dict[str, npt.NDArray[np.int64]] = field(default_factory=dict)

    def add_views(self, batch: dict[str, Any], config: AuditConfig) -> None:
        """Every (pose, view) row of a batch: viewpoint histograms, the 2D sample, rows per subject."""
        keys_2d = hash_keys(batch["pose_id"], config.seed) ^ hash_keys(batch["view_id"], config.seed + 1)
        for s in np.unique(batch["source"]):
            m = batch["source"] == s
            az = np.histogram(batch["azimuth_deg"][m], AZIMUTH_EDGES_DEG)[0]
            el = np.histogram(np.clip(batch["elevation_deg"][m], -90, 90), ELEVATION_EDGES_DEG)[0]
            self.azimuth[str(s)] = self.azimuth.get(str(s), 0) + az
            self.elevation[str(s)] = self.elevation.get(str(s), 0) + el
            self.samples_2d.setdefault(str(s), BottomK(config.coverage_sample)).add(keys_2d[m], batch["pose_2d"][m])
        view0 = batch["view_id"] == 0
        _counts_by_run(batch["source"], batch["subject"], batch["sequence"], view0, self.rows, self.poses,
                       self.sequences)  # fmt: skip

    def add_poses(self, batch: dict[str, Any], table: BoneTable, config: AuditConfig) -> None:
        """The poses of a batch (its view 0 rows): bone lengths per subject and the 3D sample."""
        view0 = batch["view_id"] == 0
        src, sub = batch["source"][view0], batch["subject"][view0]
        p3 = batch["pose_3d"][view0]
        if len(p3) == 0:
            return
        starts = run_starts(src, sub)
        run_code = np.array([self.codes.setdefault((str(src[s]), str(sub[s])), len(self.codes)) for s in starts])
        row_code = np.repeat(run_code, np.diff(np.r_[starts, len(src)]))
        self.moments.add(row_code, bone_lengths(p3, table))
        keys = hash_keys(batch["pose_id"][view0], config.seed)
        for s in np.unique(src):
            m = src == s
            self.samples.setdefault(str(s), BottomK(config.coverage_sample)).add(keys[m], p3[m])


def _subjects(tally: _Tally, table: BoneTable, config: AuditConfig) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One entry per (source, subject): counts, bone-length statistics and problems; and the problems
    as a flat list (flagged subjects)."""
    subjects, flagged = [], []
    moments, std = tally.moments, tally.moments.std
    for key in sorted(tally.rows):
        rows, poses = tally.rows[key], tally.poses[key]
        entry: dict[str, Any] = {"source": key[0], "subject": key[1], "sequences": len(tally.sequences[key]),
                                 "poses": poses, "rows": rows, "views_per_pose": rows / poses if poses else None}  # fmt: skip
        if key in tally.codes:
            g = tally.codes[key]
            lo, hi = moments.lo[g], moments.hi[g]
            entry["bones"] = {
                "mean_m": moments.mean[g].tolist(), "std_m": std[g].tolist(),
                "std_mm": np.round(1000.0 * std[g], 2).tolist(),  # to 0.01 mm: a rigid bone reads 0, not 5.688e-08 m
                "min_m": lo.tolist(),
                "max_m": hi.tolist(), "max_min_ratio": np.where(lo > 0, hi / np.maximum(lo, 1e-12), np.inf).tolist(),
            }  # fmt: skip
            entry["problems"] = check_subject(moments.mean[g], std[g], table, config.rigid_std_m)
            flagged += [{"source": key[0], "subject": key[1], **p} for p in entry["problems"]]
        subjects.append(entry)
    return subjects, flagged


def _sources(manifest_stats: dict[str, Any], tally: _Tally, subjects: list[dict[str, Any]]) -> dict[str, Any]:
    """Per source: subjects, sequences, poses before and after deduplication (manifest) and as counted."""
    sources: dict[str, Any] = {}
    for name in dict.fromkeys([*manifest_stats, *(k[0] for k in sorted(tally.rows))]):
        mine = [s for s in subjects if s["source"] == name]
        st = manifest_stats.get(name, {})
        counted = sum(s["poses"] for s in mine)
        n_rows = sum(s["rows"] for s in mine)
        sources[name] = {
            "subjects": len(mine),
            "sequences": sum(s["sequences"] for s in mine),
            "poses_read": st.get("poses"),  # before deduplication (manifest)
            "poses_kept": st.get("kept"),  # after deduplication (manifest)
            "dedup_rate": 1.0 - st["kept"] / st["poses"] if st.get("poses") else None,
            "poses": counted,  # counted in the shards (rows of view 0)
            "rows": n_rows,
            "views_per_pose": n_rows / counted if counted else None,
            "consistent_with_manifest": st.get("kept") == counted,
        }
    return sources


def _coverage(
    tally: _Tally, skeleton: Skeleton, config: AuditConfig, progress: ProgressFactory
) -> tuple[dict[str, Any], dict[str, Any]]:
    """3D coverage between the sources' samples (against CMU when present) and 2D pose-space coverage."""
    samples = tally.samples
    reference = "cmu" if "cmu" in samples else (next(iter(sorted(samples))) if samples else None)
    # Turned into the body frame only once sampled: the transform is per pose.
    body = {s: body_frame_poses(samples[s].items, skeleton) for s in sorted(samples)}
    coverage = coverage_report(body, reference=reference,
                               candidates=config.coverage_candidates, thresholds_mm=config.coverage_thresholds_mm,
                               progress=progress)  # fmt: skip
    coverage["meaning"] = COVERAGE_MEANING
    coverage["sample_per_source"] = config.coverage_sample
    coverage_2d = coverage_2d_report({s: tally.samples_2d[s].items for s in sorted(tally.samples_2d)}, progress)
    coverage_2d["sample_per_source"] = config.coverage_sample
    return coverage, coverage_2d


def _viewpoints(tally: _Tally, bank: Bank) -> dict[str, Any]:
    """Azimuth and elevation histograms per source, with their bin edges and the bank's view config."""
    return {"azimuth_edges_deg": AZIMUTH_EDGES_DEG.tolist(), "elevation_edges_deg": ELEVATION_EDGES_DEG.tolist(),
            "azimuth_counts": {s: np.asarray(v).tolist() for s, v in sorted(tally.azimuth.items())},
            "elevation_counts": {s: np.asarray(v).tolist() for s, v in sorted(tally.elevation.items())},
            "config": bank.manifest.get("config", {}).get("view")}  # fmt: skip
