"""Audit of anchor-poses: the table itself (cluster sizes, how distinct the anchors are) and how
the annotated people spread over the anchor classes.

A class that no annotated person falls in teaches the classifier nothing, and a few classes taking
most people make the others rare: `AnchorUsage` gives, per dataset, the count of matched people per
anchor (nearest anchor in 3D, posebank.anchors.assign_classes, the rule training uses), the number
of empty classes, the share of the largest, the effective number of classes (exp of the entropy),
and the total-variation distance to the bank's own class shares (the anchors' members).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..anchors import AnchorSet, assign_classes
from .coverage import nearest_mpjpe
from .numeric import summarise


def class_shares(counts: npt.NDArray[np.integer]) -> dict[str, Any]:
    """Summary of a distribution of people over K classes (counts (K,))."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    p = counts / total if total else np.zeros(len(counts))
    nz = p[p > 0]
    return {
        "people": total,
        "classes": len(counts),
        "used": int((counts > 0).sum()),
        "empty": int((counts == 0).sum()),
        "largest_share": float(p.max()) if total else None,
        "effective_classes": float(np.exp(-(nz * np.log(nz)).sum())) if total else None,
    }


def audit_anchor_table(anchors: AnchorSet, path: Path) -> dict[str, Any]:
    """Figures of an anchors.parquet: K, members per anchor, distance of each anchor to its nearest
    other anchor (mean per-joint, mm: anchors closer than the bank's spacing are redundant)."""
    members = anchors.members
    nearest = 1000.0 * nearest_mpjpe(anchors.pose_3d, anchors.pose_3d, candidates=min(8, max(1, anchors.k - 1)),
                                     exclude_self=True)  # fmt: skip
    return {
        "path": str(path),
        "k": anchors.k,
        "members": members.tolist(),
        "members_summary": summarise(members),
        "bank_shares": class_shares(members),
        "nearest_other_anchor_mm": summarise(nearest),
        # drawn by plots.py (body-centred, camera frame, m; rounded to 0.1 mm)
        "pose_3d": np.round(anchors.pose_3d.astype(np.float64), 4).tolist(),
    }


class AnchorUsage:
    """Counts matched annotated people per anchor class, per dataset (a BatchHook)."""

    def __init__(self, anchors: AnchorSet, source: Path):
        self.anchors = anchors
        self.source = source
        self.counts: dict[str, npt.NDArray[np.int64]] = {}

    def add(self, dataset: str, batch: dict[str, Any], rows: npt.NDArray[np.int64]) -> None:
        p3 = batch["pose_3d"][rows]
        p3 = p3[np.isfinite(p3).all(axis=(1, 2))]
        counts = self.counts.setdefault(dataset, np.zeros(self.anchors.k, np.int64))
        if len(p3) == 0:
            return
        if p3.shape[1:] != self.anchors.pose_3d.shape[1:]:
            raise ValueError(f"anchors {self.anchors.pose_3d.shape[1:]} and annotations {p3.shape[1:]} differ in joints")
        # Small blocks: assign_classes holds block x K x J x 3 floats at once.
        labels = assign_classes(p3, self.anchors.pose_3d, block=1024)
        counts += np.bincount(labels, minlength=self.anchors.k)

    def result(self, dataset: str) -> dict[str, Any]:
        counts = self.counts.get(dataset, np.zeros(self.anchors.k, np.int64))
        total = counts.sum()
        bank = self.anchors.members / max(1, self.anchors.members.sum())
        people = counts / total if total else np.zeros(len(counts))
        return {
            "anchors": str(self.source),
            "counts": counts.tolist(),
            **class_shares(counts),
            "bank_shares": bank.tolist(),
            "total_variation_to_bank": float(0.5 * np.abs(people - bank).sum()) if total else None,
        }
