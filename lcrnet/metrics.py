"""Pose metrics in numpy: PCK / PCKh, person matching, multi-person AP (MPJPE and rigid alignment: posebank.metrics).

Conventions: 2D poses (..., J, 2) px; 3D poses (..., J, 3) metres; `visible` (..., J) bool marks the
ground-truth joints that are scored (the annotated ones); a normaliser is one length in px per
ground-truth person (PCKh: the MPII head size, 0.6 x the head-box diagonal).

PCK for data without head sizes: the normaliser is the head size a person of that scale would have,
`HEAD_SIZE_M` x the person's px-per-metre scale, fitted between the ground-truth 2D pose and the
x, y of its 3D pose. HEAD_SIZE_M is 0.6 x the diagonal of the square box around the synthetic
body's head sphere (posebank.synth.body): the MPII definition applied to that head. posebank synth
writes that head size exactly (its people are drawn at a known scale), so it needs no estimate.

Multi-person AP follows the MPII multi-person protocol (Pishchulin et al. 2016; the toolkit's
evaluateAP.m / assignGTmulti.m): per image, the PCKh of every (prediction, ground truth) pair is the
fraction of the person's annotated joints predicted within alpha x head size; each prediction keeps
only its best person, and each person takes the prediction of highest PCKh among those (if above 0).
Per joint type, a predicted joint is a true positive when its person was taken and the joint is
within the threshold, a false positive otherwise (also, as in the toolkit, when the taken person's
joint is not annotated: LCR-Net predicts every joint, so `unannotated_as_fp=False` reports the variant
that skips those); AP is the VOC area under the precision-recall curve over all images, averaged
over joint types. Our addition: unmatched predictions on an ignore box (a person without
annotation, as MPII's ignore regions) are not counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from posebank.synth.body import HEAD_SIZE_M  # 0.178 m: see the module docstring

Array = npt.NDArray[np.floating]


def joint_errors(pred_2d: Array, gt_2d: Array, normaliser: Array) -> Array:
    """Normalised 2D joint errors ||pred - gt|| / normaliser.

    Args:
        pred_2d, gt_2d: (..., J, 2) px (broadcast against each other).
        normaliser: (...) px, one length per person.

    Returns:
        (..., J) errors in units of the normaliser.
    """
    if np.shape(pred_2d)[-1] != 2 or np.shape(gt_2d)[-1] != 2:
        raise ValueError(f"expected (..., J, 2) arrays, got {np.shape(pred_2d)} and {np.shape(gt_2d)}")
    return np.linalg.norm(np.asarray(pred_2d, np.float64) - gt_2d, axis=-1) / np.asarray(normaliser, np.float64)[..., None]


def pck_correct(pred_2d: Array, gt_2d: Array, visible: npt.NDArray[np.bool_], normaliser: Array, alpha: float = 0.5) -> npt.NDArray[np.bool_]:
    """(..., J) bool: the joint is annotated and predicted within alpha x normaliser (PCK / PCKh@alpha)."""
    return np.asarray(visible, bool) & (joint_errors(pred_2d, gt_2d, normaliser) <= alpha)


def pck(pred_2d: Array, gt_2d: Array, visible: npt.NDArray[np.bool_], normaliser: Array, alpha: float = 0.5) -> float:
    """Fraction of the annotated joints predicted within alpha x normaliser (NaN when none is annotated).

    Args:
        pred_2d, gt_2d: (N, J, 2) px. visible: (N, J) bool. normaliser: (N,) px. alpha: 0.5 for PCKh@0.5.
    """
    total = int(np.asarray(visible, bool).sum())
    if total == 0:
        return float("nan")
    return float(pck_correct(pred_2d, gt_2d, visible, normaliser, alpha).sum() / total)


def px_per_metre(gt_2d: Array, gt_3d: Array) -> Array:
    """(N,) least-squares scale s of gt_2d ~ s * gt_3d[..., :2] + t per person (px per metre).

    Args:
        gt_2d: (N, J, 2) px. gt_3d: (N, J, 3) metres, camera frame (x right, y down).
    """
    a = np.asarray(gt_2d, np.float64)
    b = np.asarray(gt_3d, np.float64)[..., :2]
    a = a - a.mean(axis=-2, keepdims=True)
    b = b - b.mean(axis=-2, keepdims=True)
    return (a * b).sum(axis=(-2, -1)) / np.maximum((b * b).sum(axis=(-2, -1)), 1e-12)


def estimated_head_size(gt_2d: Array, gt_3d: Array) -> Array:
    """(N,) px: HEAD_SIZE_M at each person's px-per-metre scale (the PCK normaliser without head boxes)."""
    return HEAD_SIZE_M * px_per_metre(gt_2d, gt_3d)


def box_iou(a: Array, b: Array) -> Array:
    """(N, M) IoU of boxes (N, 4) and (M, 4), x0, y0, x1, y1."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=-1)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(axis=-1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(axis=-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def match_by_iou(gt_boxes: Array, pred_boxes: Array, min_iou: float = 0.0) -> npt.NDArray[np.int64]:
    """One-to-one matching of ground-truth people to predictions, greedily by decreasing box IoU.

    This is how the single-person metrics pick "the pose that corresponds to each ground truth"
    (sec 5.3: localisation is used only to select it).

    Args:
        gt_boxes: (N, 4) px. pred_boxes: (M, 4) px.
        min_iou: pairs must overlap more than this.

    Returns:
        (N,) index of each ground truth's prediction, -1 when none is left that overlaps it.
    """
    iou = box_iou(gt_boxes, pred_boxes)
    out = np.full(iou.shape[0], -1, dtype=np.int64)
    if iou.size == 0:
        return out
    order = np.argsort(-iou, axis=None, kind="stable")
    used_gt, used_pred = np.zeros(iou.shape[0], bool), np.zeros(iou.shape[1], bool)
    for flat in order:
        g, p = divmod(int(flat), iou.shape[1])
        if iou[g, p] <= min_iou:
            break
        if not used_gt[g] and not used_pred[p]:
            out[g], used_gt[g], used_pred[p] = p, True, True
    return out


def voc_ap(recall: Array, precision: Array) -> float:
    """Area under the precision-recall curve with the monotone precision envelope (VOC, all points)."""
    r = np.concatenate([[0.0], np.asarray(recall, np.float64), [1.0]])
    p = np.concatenate([[0.0], np.asarray(precision, np.float64), [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    steps = np.where(r[1:] != r[:-1])[0]
    return float(((r[steps + 1] - r[steps]) * p[steps + 1]).sum())


@dataclass
class MultiPersonAP:
    """Accumulates images for the MPII-style multi-person AP (module docstring); `result()` at the end."""

    num_joints: int
    alpha: float = 0.5
    unannotated_as_fp: bool = True  # a taken person's unannotated joint counts as a false positive (the toolkit)
    ignore_iou: float = 0.5  # an unmatched prediction is not counted when its box overlaps an ignore box this much
    _scores: list[list[float]] = field(default_factory=list)
    _tp: list[list[bool]] = field(default_factory=list)
    _positives: npt.NDArray[np.int64] | None = None

    def __post_init__(self) -> None:
        self._scores = [[] for _ in range(self.num_joints)]
        self._tp = [[] for _ in range(self.num_joints)]
        self._positives = np.zeros(self.num_joints, dtype=np.int64)

    def add(
        self,
        pred_2d: Array,
        scores: Array,
        gt_2d: Array,
        visible: npt.NDArray[np.bool_],
        normaliser: Array,
        *,
        pred_boxes: Array | None = None,
        ignore_boxes: Array | None = None,
    ) -> None:
        """One image: predictions (M, J, 2) px with scores (M,); ground truth (N, J, 2) px, (N, J) bool, (N,) px.

        pred_boxes (M, 4) and ignore_boxes (I, 4) px: optional, for the ignore rule.
        """
        assert self._positives is not None
        visible = np.asarray(visible, bool).reshape(-1, self.num_joints)
        self._positives += visible.sum(axis=0)
        m, n = len(scores), len(gt_2d)
        if m == 0:
            return
        assigned = np.full(m, -1, dtype=np.int64)
        correct = np.zeros((m, max(n, 1), self.num_joints), bool)
        if n:
            correct = pck_correct(pred_2d[:, None], np.asarray(gt_2d)[None], visible[None], np.asarray(normaliser)[None], self.alpha)
            pckh = correct.sum(axis=-1) / np.maximum(visible.sum(axis=1), 1)[None]  # (M, N)
            best = pckh.argmax(axis=1)  # each prediction keeps its best person only
            kept = np.zeros_like(pckh)
            kept[np.arange(m), best] = pckh[np.arange(m), best]
            for g in range(n):  # each person takes its best prediction
                p = int(kept[:, g].argmax())
                if kept[p, g] > 0:
                    assigned[p] = g
        ignored = np.zeros(m, bool)
        if ignore_boxes is not None and pred_boxes is not None and len(ignore_boxes):
            ignored = (box_iou(pred_boxes, ignore_boxes).max(axis=1) >= self.ignore_iou) & (assigned < 0)
        for p in np.flatnonzero(~ignored):
            g = assigned[p]
            for j in range(self.num_joints):
                if g >= 0 and not visible[g, j] and not self.unannotated_as_fp:
                    continue
                self._scores[j].append(float(scores[p]))
                self._tp[j].append(bool(g >= 0 and correct[p, g, j]))

    def result(self) -> dict[str, float | list[float]]:
        """{"ap": mean over joint types with positives, "ap_per_joint": (J,) list, NaN without positives}."""
        assert self._positives is not None
        per_joint = []
        for j in range(self.num_joints):
            npos = int(self._positives[j])
            if npos == 0:
                per_joint.append(float("nan"))
                continue
            order = np.argsort(-np.asarray(self._scores[j]), kind="stable")
            tp = np.asarray(self._tp[j], bool)[order]
            ctp, cfp = np.cumsum(tp), np.cumsum(~tp)
            recall = ctp / npos
            precision = ctp / np.maximum(ctp + cfp, 1)
            per_joint.append(voc_ap(recall, precision) if len(tp) else 0.0)
        valid = [v for v in per_joint if not math.isnan(v)]
        return {"ap": float(np.mean(valid)) if valid else float("nan"), "ap_per_joint": per_joint}
