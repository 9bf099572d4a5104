"""Where the regression's lead over the anchor-only baseline comes from, on a trained model's held-out images.

    .venv/bin/python bench/learn_cpu_diagnose.py --model WORK/learn_model/model.pt --data WORK/train [--json out.json]

WORK is a `bench/learn_cpu.py --work WORK` folder. For each held-out person with a full-body box, the pose
proposals on it (proposal box IoU >= 0.5 with the person's pose box, every full-body class above the model's
score threshold, before rescoring and integration) are split by class: the person's own class (its nearest
anchor in 3D, the class it is trained with) and the other full-body classes. Per proposal, PCK@0.5 (true head
size) of the regressed pose and of the anchor-only pose (the class's anchor placed in the same box).

Printed (and written to --json), averaged over people:
- own_anchor_score_share: share of the person's proposal scores on its own anchor (full- or upper-body class),
  against chance 1/K; top_is_own_anchor: how often its best-scored proposal has it;
- pck_{regressed,anchor}_{own,other}: mean per-proposal PCK of own-class and other-class proposals;
- pck_{regressed,anchor}_weighted: score-weighted mean over every full-body proposal on the person.
The regression can only lead the anchors by as much as the classes its scores pick are trained to regress.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import emit_json, machine_description, round_or_none  # noqa: E402

from lcrnet.checkpoint import model_from_checkpoint  # noqa: E402
from lcrnet.data import PoseShardDataset, resolve_sources  # noqa: E402
from lcrnet.evaluate import raw_proposals  # noqa: E402
from lcrnet.metrics import box_iou, pck_correct  # noqa: E402
from lcrnet.model import LCRNet, anchor_only_proposals  # noqa: E402
from lcrnet.poses import centre_poses, pose_boxes  # noqa: E402

KEYS = ("own_anchor_score_share", "top_is_own_anchor", "pck_regressed_own", "pck_anchor_own", "pck_regressed_other",
        "pck_anchor_other", "pck_regressed_weighted", "pck_anchor_weighted")  # fmt: skip


def per_proposal_pck(poses_2d: np.ndarray, truth_2d: np.ndarray, visible: np.ndarray, head_size_px: float) -> np.ndarray:
    """(P, J, 2) px poses against one person's (J, 2) px pose -> (P,) PCK@0.5 over its visible joints."""
    return pck_correct(poses_2d, truth_2d[None], visible[None], np.full(len(poses_2d), head_size_px)).sum(1) / visible.sum()


def person_rows(model: LCRNet, image: torch.Tensor, target: dict[str, torch.Tensor]) -> list[dict[str, float]]:
    """One row of KEYS per person of the image with a full-body box and proposals on it."""
    raw = model([image])[0]
    k, scale = model.anchors.num_anchors, raw["scale"]
    regressed_2d = (raw["pose_2d"] / scale).numpy()
    anchor_2d = (anchor_only_proposals(raw, model.anchors)["pose_2d"] / scale).numpy()
    boxes = (raw["boxes"] / scale.repeat(2)).numpy()
    scores, labels = raw["scores"].numpy(), raw["labels"].numpy()
    anchor_of = (labels - 1) % k
    full_body = labels <= k
    gt_2d, visible = target["pose_2d"].numpy(), target["visible"].numpy().astype(bool)
    own = model.anchors.assign_classes(
        centre_poses(target["pose_3d"].float(), model.skeleton.torso), torch.zeros(len(gt_2d), dtype=torch.bool)
    ).numpy() - 1
    gt_boxes = pose_boxes(target["pose_2d"].float(), model.cfg.box_margin).numpy()
    rows = []
    for g in np.flatnonzero(visible[:, list(model.skeleton.lower_body)].any(axis=1)):
        on = box_iou(gt_boxes[g : g + 1], boxes)[0] >= 0.5
        mask = on & full_body
        if not mask.any():
            continue
        norm = float(target["head_size"][g])
        reg = per_proposal_pck(regressed_2d[mask], gt_2d[g], visible[g], norm)
        anc = per_proposal_pck(anchor_2d[mask], gt_2d[g], visible[g], norm)
        is_own, s = anchor_of[mask] == own[g], scores[mask]
        on_scores, on_anchor = scores[on], anchor_of[on]
        rows.append({
            "own_anchor_score_share": on_scores[on_anchor == own[g]].sum() / on_scores.sum(),
            "top_is_own_anchor": float(on_anchor[np.argmax(on_scores)] == own[g]),
            "pck_regressed_own": reg[is_own].mean() if is_own.any() else np.nan,
            "pck_anchor_own": anc[is_own].mean() if is_own.any() else np.nan,
            "pck_regressed_other": reg[~is_own].mean() if (~is_own).any() else np.nan,
            "pck_anchor_other": anc[~is_own].mean() if (~is_own).any() else np.nan,
            "pck_regressed_weighted": (reg * s).sum() / s.sum(),
            "pck_anchor_weighted": (anc * s).sum() / s.sum(),
        })  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="model.pt of a learn_cpu.py run")
    parser.add_argument("--data", type=Path, required=True, help="its training shards (WORK/train)")
    parser.add_argument("--split", default="val", help="split to diagnose (default: the held-out val)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = model_from_checkpoint(args.model)  # in eval mode
    dataset = PoseShardDataset(resolve_sources([args.data]), model.skeleton, split=args.split)
    rows: list[dict[str, float]] = []
    with raw_proposals(model), torch.no_grad():
        for i in range(len(dataset)):
            rows.extend(person_rows(model, *dataset[i]))
    table = np.array([[row[key] for key in KEYS] for row in rows], dtype=np.float64).reshape(-1, len(KEYS))
    means = np.nanmean(table, axis=0) if len(rows) else np.full(len(KEYS), np.nan)
    result = {
        "machine": machine_description(), "model": str(args.model), "split": args.split, "images": len(dataset),
        "people": len(rows), "k": model.anchors.num_anchors, "chance_own_anchor_share": 1 / model.anchors.num_anchors,
        **{key: round_or_none(v) for key, v in zip(KEYS, means)},
    }  # fmt: skip
    emit_json(result, args.json)


if __name__ == "__main__":
    main()
