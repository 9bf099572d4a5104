"""Scores on the Human3.6M protocols (posebank.h36m.protocols): MPJPE raw and aligned, per action,
in the layout of the paper's Tables 2 and 3.

"Raw" (the paper's Abs.) is the MPJPE of the body-centred poses (centre: mean of hips and shoulders,
as every posebank 3D pose); "aligned" after the best rotation and translation (lcrnet.metrics.rigid_align:
the paper's "rigid alignment", no scale). Per action: the mean over its frames; the table's "Avg." is
the mean over the actions present, as the paper's tables; `all_frames` the mean over every frame.
The joints are those of the poses given: 13 (j13) or 17 (j17).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from posebank.h36m.names import action_abbreviations, actions, parse_image_path, parse_sequence
from posebank.h36m.protocols import get_protocol
from posebank.metrics import mpjpe, rigid_align


@dataclass(frozen=True)
class ProtocolTable:
    """Per-action MPJPE (mm) of one protocol.

    Attributes:
        protocol: "h36m-p1" | "h36m-p2" | "h36m-p3".
        joints: J of the poses scored.
        frames: test frames scored per action.
        raw_mm / aligned_mm: action -> mean MPJPE in mm.
        average: {"raw": .., "aligned": ..}: mean over actions (the paper's "Avg.").
        all_frames: {"raw": .., "aligned": ..}: mean over frames.
        expected_frames: the paper's test-set size, when it gives one (P1: 928).
    """

    protocol: str
    joints: int
    frames: dict[str, int]
    raw_mm: dict[str, float]
    aligned_mm: dict[str, float]
    average: dict[str, float]
    all_frames: dict[str, float]
    expected_frames: int | None = None
    metrics: tuple[str, ...] = field(default=("raw", "aligned"))

    def to_dict(self) -> dict[str, Any]:
        return {"protocol": self.protocol, "joints": self.joints, "frames": self.frames, "raw_mm": self.raw_mm,
                "aligned_mm": self.aligned_mm, "average": self.average, "all_frames": self.all_frames,
                "expected_frames": self.expected_frames, "reported": list(self.metrics)}  # fmt: skip


def check_shards_protocol(protocol: str, shard_metadata: dict[str, Any], *, path: str = "") -> None:
    """Refuse shards that `posebank annotate h36m` did not write for `protocol` (their "test" rows would be other frames).

    Raises:
        ValueError: naming the file, the protocol asked for and the one the shards were written for.
    """
    wanted = get_protocol(protocol).name
    if shard_metadata.get("dataset") != "h36m" or shard_metadata.get("protocol") != wanted:
        raise ValueError(f"{path}: written for dataset {shard_metadata.get('dataset')!r} protocol "
                         f"{shard_metadata.get('protocol')!r}, not {wanted}: run posebank annotate h36m --protocol {wanted}")  # fmt: skip


def per_frame_errors(pred_3d: npt.NDArray[np.floating], gt_3d: npt.NDArray[np.floating]) -> tuple[np.ndarray, np.ndarray]:
    """(N,) raw and (N,) aligned MPJPE in mm of body-centred (N, J, 3) metre poses."""
    pred = np.asarray(pred_3d, np.float64)
    gt = np.asarray(gt_3d, np.float64)
    raw = 1000.0 * mpjpe(pred, gt)
    aligned = 1000.0 * mpjpe(rigid_align(pred, gt), gt)
    return raw, aligned


def protocol_table(protocol: str, images: list[str], pred_3d: npt.NDArray[np.floating], gt_3d: npt.NDArray[np.floating]) -> ProtocolTable:
    """Score predictions of a protocol's test frames.

    Args:
        protocol: "h36m-p1" | "h36m-p2" | "h36m-p3" (or "p1", ...).
        images: (N,) the rows' `image` column (posebank.h36m.names.image_path layout); the action is read from it.
        pred_3d, gt_3d: (N, J, 3) metres, body-centred, the same camera frame.

    Raises:
        ValueError: an image path that does not name a Human3.6M frame, or shapes that differ.
    """
    p = get_protocol(protocol)
    if len(images) != len(pred_3d):
        raise ValueError(f"{len(images)} images for {len(pred_3d)} poses")
    raw, aligned = per_frame_errors(pred_3d, gt_3d)
    names = np.array([parse_sequence(parse_image_path(i).sequence).action for i in images], dtype=object)
    frames, raw_mm, aligned_mm = {}, {}, {}
    for action in actions():
        sel = names == action
        if sel.any():
            frames[action] = int(sel.sum())
            raw_mm[action] = float(raw[sel].mean())
            aligned_mm[action] = float(aligned[sel].mean())
    average = {"raw": float(np.mean(list(raw_mm.values()))), "aligned": float(np.mean(list(aligned_mm.values())))}
    all_frames = {"raw": float(raw.mean()), "aligned": float(aligned.mean())}
    return ProtocolTable(p.name, int(np.shape(pred_3d)[1]), frames, raw_mm, aligned_mm, average, all_frames,
                         p.expected_test_frames, p.metrics)  # fmt: skip


def format_table(table: ProtocolTable, method: str = "posebank") -> str:
    """The paper's layout: one row per reported metric, columns Dir. ... WalkT. Avg. (mm), tab-separated."""
    abbr = action_abbreviations()
    head = ["Method", *(abbr[a] for a in actions()), "Avg."]
    lines = ["\t".join(head)]
    for metric in table.metrics:
        values = table.raw_mm if metric == "raw" else table.aligned_mm
        label = f"{method} ({table.joints}j, {'Abs.' if metric == 'raw' else 'Align.'})"
        cells = [f"{values[a]:.1f}" if a in values else "-" for a in actions()]
        lines.append("\t".join([label, *cells, f"{table.average[metric]:.1f}"]))
    total = sum(table.frames.values())
    expected = f" (the paper: {table.expected_frames})" if table.expected_frames else ""
    lines.append(f"{table.protocol}: {total} test frames{expected}; mean over frames: "
                 + ", ".join(f"{m} {table.all_frames[m]:.1f} mm" for m in table.metrics))  # fmt: skip
    return "\n".join(lines)


class ProtocolScores:
    """Accumulates one method's predictions on a protocol's test frames, person by person, for `evaluate`.

    Usage: `scores.add(image, pred_3d, gt_3d)` for every ground-truth person (pred_3d None when no
    prediction was matched to it), then `scores.result()`.
    """

    def __init__(self, protocol: str) -> None:
        self.protocol = get_protocol(protocol).name
        self.images: list[str] = []
        self.pred: list[np.ndarray] = []
        self.gt: list[np.ndarray] = []
        self.missed: list[str] = []

    def add(self, image: str, pred_3d: npt.NDArray[np.floating] | None, gt_3d: npt.NDArray[np.floating]) -> None:
        """One person: image path (the shard's `image`), (J, 3) metres body-centred, or None when missed."""
        if pred_3d is None:
            self.missed.append(image)
            return
        self.images.append(image)
        self.pred.append(np.asarray(pred_3d, np.float64))
        self.gt.append(np.asarray(gt_3d, np.float64))

    def result(self) -> dict[str, Any]:
        """The table (ProtocolTable.to_dict) over the scored frames, with `missed` (frames without a
        prediction: not in the means, to be reported beside them); {"missed": n} alone when none scored."""
        if not self.images:
            return {"protocol": self.protocol, "missed": len(self.missed)}
        table = protocol_table(self.protocol, self.images, np.stack(self.pred), np.stack(self.gt))
        return {**table.to_dict(), "missed": len(self.missed), "table": format_table(table)}
