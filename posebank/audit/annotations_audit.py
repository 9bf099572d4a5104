"""Audit of annotation shards: how good the pseudo ground truth is, per dataset.

Per dataset: people, matched, flags; the match-distance distribution (eq. 9 distance, unitless in
[0, 2]) overall and per number of annotated joints; completions per joint (people whose joint was
not annotated but was filled in by their match); the top-k spread (m, 3D disagreement of the k best
matches); the flagged people with their image and person ids; the worst matches, a seeded random
sample of matched people (the typical case) and suspected left/right swaps as full records (drawn by
drawing.py). What any shard has, synthetic ones included (no match there): per joint the share of
people whose joint is occluded, the person's height in the image (px) and the people per image. Optional hooks see every batch: anchor
class usage (anchors_audit.AnchorUsage) and a second bank (compare.BankComparison).

Memory: per person only a few scalars are kept (for exact quantiles); poses are read batch by batch.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from .config import AuditConfig
from .numeric import histogram, summarise
from .records import SampledPeople, WorstPeople, iter_people

FLAG_SWAP = "left_right_swap"  # posebank.annotate.FLAG_SWAP (not imported: that module pulls in search)
DISTANCE_EDGES = np.round(np.arange(0.0, 1.52, 0.02), 2)  # eq. 9 distance bins (the last holds >= 1.5)
SPREAD_EDGES_MM = np.arange(0.0, 505.0, 10.0)
HEIGHT_EDGES_PX = np.arange(0.0, 1025.0, 25.0)  # person height bins (the last holds >= 1000 px)


class BatchHook(Protocol):
    """Something that sees the people of every batch of one dataset (anchor usage, bank comparison)."""

    def add(self, dataset: str, batch: dict[str, Any], rows: npt.NDArray[np.int64]) -> None: ...

    def result(self, dataset: str) -> dict[str, Any]: ...


@dataclass
class _DatasetAccumulator:
    """Running figures of one dataset: counters, per-person scalars, worst people."""

    joints: int
    worst_size: int
    listed: int
    seed: int = 0
    people: int = 0
    splits: Counter = field(default_factory=Counter)
    flags: Counter = field(default_factory=Counter)
    flagged: dict[str, list[list[Any]]] = field(default_factory=dict)
    distance: list[npt.NDArray[np.float64]] = field(default_factory=list)
    spread: list[npt.NDArray[np.float64]] = field(default_factory=list)
    estimate: list[npt.NDArray[np.float64]] = field(default_factory=list)  # mm, the label's expected error
    n_visible: list[npt.NDArray[np.int64]] = field(default_factory=list)
    height_px: list[npt.NDArray[np.float64]] = field(default_factory=list)  # joints' box height per person
    per_image: Counter = field(default_factory=Counter)  # people per image
    completed: npt.NDArray[np.int64] = field(init=False)  # (J,) not annotated, matched
    annotated: npt.NDArray[np.int64] = field(init=False)  # (J,)
    occluded: npt.NDArray[np.int64] = field(init=False)  # (J,) the source's occlusion flag
    worst: WorstPeople = field(init=False)
    typical: SampledPeople = field(init=False)
    swaps: WorstPeople = field(init=False)

    def __post_init__(self) -> None:
        self.completed = np.zeros(self.joints, np.int64)
        self.annotated = np.zeros(self.joints, np.int64)
        self.occluded = np.zeros(self.joints, np.int64)
        self.worst = WorstPeople(self.worst_size)
        self.typical = SampledPeople(self.worst_size, self.seed)
        self.swaps = WorstPeople(self.worst_size)

    def add(self, batch: dict[str, Any], rows: npt.NDArray[np.int64], writer: Any) -> None:
        vis = batch["visible"][rows]
        dist = batch["match_distance"][rows]
        matched = np.isfinite(dist)
        self.people += len(rows)
        self.splits.update(str(s) for s in batch["split"][rows])
        self.distance.append(dist)
        self.spread.append(batch["match_spread"][rows])
        self.estimate.append(batch["error_estimate"][rows])
        self.n_visible.append(vis.sum(1))
        self.annotated += vis.sum(0)
        self.occluded += batch["occluded"][rows].sum(0)
        self.completed += (~vis & matched[:, None]).sum(0)
        y = batch["pose_2d"][rows][..., 1].astype(np.float64)  # annotated joints only (completed ones are guesses)
        top, bottom = np.where(vis, y, np.inf).min(1), np.where(vis, y, -np.inf).max(1)
        self.height_px.append(np.where(vis.sum(1) >= 2, bottom - top, np.nan))
        self.per_image.update(str(s) for s in batch["image"][rows])
        swap_rows = []
        for i in rows:
            flags = batch["flags"][i]
            if not flags:
                continue
            for f in flags:
                self.flags[f] += 1
                listed = self.flagged.setdefault(f, [])
                if len(listed) < self.listed:
                    listed.append([str(batch["image"][i]), int(batch["person"][i])])
            if FLAG_SWAP in flags:
                swap_rows.append(i)
            d = batch["match_distance"][i]
            writer.writerow([batch["dataset"][i], batch["split"][i], batch["image"][i], int(batch["person"][i]),
                             int(batch["visible"][i].sum()), "" if not np.isfinite(d) else f"{d:.6f}", ";".join(flags)])  # fmt: skip
        self.worst.add(batch, rows)
        self.typical.add(batch, rows)
        self.swaps.add(batch, np.array(swap_rows, np.int64))

    def result(self, joint_names: Sequence[str]) -> dict[str, Any]:
        dist = np.concatenate(self.distance)
        spread = np.concatenate(self.spread)
        n_vis = np.concatenate(self.n_visible)
        height = np.concatenate(self.height_px)
        per_image = np.array(list(self.per_image.values()), dtype=np.float64)
        matched = np.isfinite(dist)
        by_joints = []
        for n in range(self.joints + 1):
            sel = n_vis == n
            if sel.any():
                s = summarise(dist[sel])
                by_joints.append({"joints": n, "people": int(sel.sum()), "matched": int((sel & matched).sum()),
                                  **{k: s[k] for k in ("mean", "q50", "q90") if k in s}})  # fmt: skip
        n_matched = int(matched.sum())
        return {
            "people": self.people,
            "matched": n_matched,
            "unmatched": self.people - n_matched,
            "splits": dict(sorted(self.splits.items())),
            "flags": dict(sorted(self.flags.items())),
            "flagged_people": {f: {"count": self.flags[f], "listed": v} for f, v in sorted(self.flagged.items())},
            "match_distance": summarise(dist),
            "match_distance_histogram": histogram(dist, DISTANCE_EDGES),
            "by_visible_joints": by_joints,
            "completions_per_joint": {
                "joints": list(joint_names),
                "completed": self.completed.tolist(),  # not annotated, matched: filled in by the match
                "annotated": self.annotated.tolist(),
                "completed_share_of_matched": [c / n_matched if n_matched else None for c in self.completed.tolist()],
            },
            "match_spread_mm": summarise(spread, scale=1000.0),
            "match_spread_histogram_mm": histogram(1000.0 * spread, SPREAD_EDGES_MM),
            "error_estimate_mm": summarise(np.concatenate(self.estimate)),
            "occlusion_per_joint": {
                "joints": list(joint_names),
                "occluded": self.occluded.tolist(),  # the source's flag (synth: hidden by a body part)
                "occluded_share": [o / self.people if self.people else None for o in self.occluded.tolist()],
                "annotated_share": [a / self.people if self.people else None for a in self.annotated.tolist()],
            },
            "person_height_px": {**summarise(height), "histogram": histogram(height, HEIGHT_EDGES_PX)},
            "people_per_image": {**summarise(per_image), "images": len(per_image),
                                 "histogram": histogram(per_image, np.arange(0.5, max(2, int(per_image.max(initial=1))) + 1.5))},
            "worst": self.worst.records,
            "typical": self.typical.records,
            "swaps": self.swaps.records,
        }


def audit_annotations(
    files: Sequence[Path], config: AuditConfig, flagged_csv: Path, hooks: dict[str, BatchHook] | None = None,
    progress: Any = None,
) -> dict[str, Any]:  # fmt: skip
    """Every annotation figure of some shards, per dataset (JSON-able).

    Args:
        files: the annotation shards (posebank.shards.annotations_schema).
        config: --worst (records kept per dataset), --listed, --batch-rows.
        flagged_csv: where every flagged person is written (dataset, split, image, person,
            visible_joints, match_distance, flags separated by ';').
        hooks: name -> BatchHook, their results go under that name in each dataset's entry.

    Returns:
        {"files", "people", "skeleton", "joint_names", "base_bank", "datasets": {dataset: {...}}}.
    """
    from ..shards import read_metadata

    meta = read_metadata(files[0])
    joint_names = list(meta.get("joint_names", []))
    j = len(joint_names)
    hooks = hooks or {}
    accs: dict[str, _DatasetAccumulator] = {}
    flagged_csv.parent.mkdir(parents=True, exist_ok=True)
    with open(flagged_csv, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["dataset", "split", "image", "person", "visible_joints", "match_distance", "flags"])
        file_list, rows_read = list(files), 0
        for path in progress(file_list, "auditing annotations", len(file_list)) if progress else file_list:
            for batch in iter_people([path], j, config.batch_rows, start=rows_read):
                rows_read += len(batch["row"])
                for ds in sorted(set(batch["dataset"].tolist())):
                    rows = np.flatnonzero(batch["dataset"] == ds)
                    accs.setdefault(ds, _DatasetAccumulator(j, config.worst, config.listed, config.seed)).add(batch, rows, writer)
                    for hook in hooks.values():
                        hook.add(ds, batch, rows)
    datasets = {}
    for ds in sorted(accs):
        datasets[ds] = accs[ds].result(joint_names)
        for name, hook in hooks.items():
            datasets[ds][name] = hook.result(ds)
    config_meta = meta.get("config", {}) if isinstance(meta.get("config"), dict) else {}
    return {
        "files": len(files),
        "people": sum(a.people for a in accs.values()),
        "skeleton": meta.get("skeleton"),
        "joint_names": joint_names,
        "base_bank": config_meta.get("bank"),
        "base_bank_manifest_sha256": meta.get("bank_manifest_sha256"),
        "flagged_csv": flagged_csv.name,
        "datasets": datasets,
    }
