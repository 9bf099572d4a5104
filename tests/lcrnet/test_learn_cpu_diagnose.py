"""bench/learn_cpu_diagnose.py's per-person split of proposals, on a hand-built proposal set."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from lcrnet.config import ModelConfig


class Proposals:
    """Returns fixed raw proposals, as LCRNet does with return_raw_proposals (network px = input px)."""

    def __init__(self, anchors, skeleton, raw: dict[str, torch.Tensor]) -> None:  # type: ignore[no-untyped-def]
        self.anchors, self.skeleton, self.raw = anchors, skeleton, raw
        self.cfg = SimpleNamespace(box_margin=ModelConfig.box_margin)

    def __call__(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        return [self.raw]


def test_own_class_proposals_are_told_from_the_others(anchors, skeleton, scene, bench_script) -> None:  # type: ignore[no-untyped-def]
    box = (20.0, 10.0, 70.0, 90.0)
    own_k = 1
    image, target = scene([(own_k, box)])
    target["head_size"] = torch.tensor([8.0])
    gt_box = torch.tensor([box])
    # Three full-body proposals in the person's own pose box, so that its own class's anchor-only pose is the
    # person exactly (scene draws anchor own_k in that box): its own class regressed exactly onto it, another
    # class regressed onto it too, and a third class whose regression puts every joint 40 px off.
    labels = torch.tensor([own_k + 1, 3, 4])
    scores = torch.tensor([0.5, 0.3, 0.2])
    truth_2d, truth_3d = target["pose_2d"][[0, 0, 0]], target["pose_3d"][[0, 0, 0]]
    off_2d = truth_2d.clone()
    off_2d[2] += 40.0
    raw = {"boxes": gt_box.repeat(3, 1), "scores": scores, "labels": labels, "pose_2d": off_2d,
           "pose_3d": truth_3d, "scale": torch.ones(2), "image_size": torch.tensor([96, 128])}  # fmt: skip
    rows = bench_script("learn_cpu_diagnose").person_rows(Proposals(anchors, skeleton, raw), image, target)

    assert len(rows) == 1
    row = rows[0]
    assert row["own_anchor_score_share"] == pytest.approx(0.5)
    assert row["top_is_own_anchor"] == 1.0
    assert row["pck_regressed_own"] == 1.0 and row["pck_anchor_own"] == 1.0
    assert row["pck_regressed_other"] == pytest.approx(0.5)  # one exact, one 40 px off
    assert row["pck_anchor_other"] < 1.0  # other anchors are other poses
    assert row["pck_regressed_weighted"] == pytest.approx(0.8)  # (0.5 * 1 + 0.3 * 1 + 0.2 * 0) / 1
    assert np.isfinite(row["pck_anchor_weighted"])


def test_people_without_proposals_on_them_give_no_row(anchors, skeleton, scene, bench_script) -> None:  # type: ignore[no-untyped-def]
    image, target = scene([(0, (10.0, 10.0, 40.0, 80.0))])
    target["head_size"] = torch.tensor([8.0])
    j = anchors.num_joints
    raw = {"boxes": torch.tensor([[80.0, 10.0, 120.0, 90.0]]), "scores": torch.tensor([0.9]),
           "labels": torch.tensor([1]), "pose_2d": torch.zeros(1, j, 2), "pose_3d": torch.zeros(1, j, 3),
           "scale": torch.ones(2), "image_size": torch.tensor([96, 128])}  # fmt: skip
    assert bench_script("learn_cpu_diagnose").person_rows(Proposals(anchors, skeleton, raw), image, target) == []
