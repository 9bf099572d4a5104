"""lcrnet.metrics on hand-made examples: PCKh, matching, multi-person AP (MPJPE and rigid alignment: tests/test_metrics.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lcrnet.metrics import (
    HEAD_SIZE_M,
    MultiPersonAP,
    box_iou,
    estimated_head_size,
    match_by_iou,
    pck,
    pck_correct,
    voc_ap,
)


def test_pckh_by_hand() -> None:
    gt = np.zeros((2, 4, 2))
    pred = np.zeros((2, 4, 2))
    # Person 0, head size 20 px: threshold 10 px. Errors 0, 9.9, 10 (counts: <=), 10.1.
    pred[0, :, 0] = [0.0, 9.9, 10.0, 10.1]
    # Person 1, head size 40 px: threshold 20 px. Errors 3-4-5 = 5 px, 25 px; joint 3 not annotated (error 100).
    pred[1, 0] = [3.0, 4.0]
    pred[1, 1] = [0.0, 25.0]
    pred[1, 3] = [100.0, 0.0]
    visible = np.array([[True, True, True, True], [True, True, False, False]])
    head = np.array([20.0, 40.0])
    correct = pck_correct(pred, gt, visible, head, alpha=0.5)
    assert correct.tolist() == [[True, True, True, False], [True, False, False, False]]
    assert pck(pred, gt, visible, head) == pytest.approx(4 / 6)
    assert pck(pred, gt, visible, head, alpha=1.0) == 1.0  # 10.1 <= 20 and 25 <= 40
    assert math.isnan(pck(pred, gt, np.zeros_like(visible), head))


def test_estimated_head_size_from_an_orthographic_person() -> None:
    rng = np.random.default_rng(1)
    pose_3d = rng.normal(scale=0.4, size=(2, 13, 3))
    scale = np.array([150.0, 40.0])  # px per metre, as posebank synth draws people
    pose_2d = scale[:, None, None] * pose_3d[..., :2] + np.array([[[300.0, 200.0]], [[20.0, 50.0]]])
    np.testing.assert_allclose(estimated_head_size(pose_2d, pose_3d), HEAD_SIZE_M * scale)
    assert HEAD_SIZE_M == pytest.approx(0.178, abs=1e-3)


def test_box_iou_and_greedy_matching() -> None:
    gt = np.array([[0.0, 0.0, 10.0, 10.0], [20.0, 0.0, 30.0, 10.0], [100.0, 100.0, 110.0, 110.0]])
    pred = np.array([[21.0, 0.0, 31.0, 10.0], [0.0, 0.0, 10.0, 5.0], [0.0, 0.0, 10.0, 10.0]])
    iou = box_iou(gt, pred)
    assert iou[0, 2] == 1.0 and iou[0, 1] == 0.5 and iou[1, 0] == pytest.approx(90 / 110)
    # gt 0 takes its identical box (not the half one), gt 1 the shifted one, gt 2 nothing.
    assert match_by_iou(gt, pred).tolist() == [2, 0, -1]
    assert match_by_iou(gt, np.zeros((0, 4))).tolist() == [-1, -1, -1]


def test_voc_ap() -> None:
    assert voc_ap(np.array([0.5, 1.0]), np.array([1.0, 1.0])) == pytest.approx(1.0)
    # TP, FP, TP with 2 positives: recall .5 .5 1, precision 1 .5 .667 -> 0.5 * 1 + 0.5 * 2/3.
    assert voc_ap(np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2 / 3])) == pytest.approx(0.5 + 1 / 3)


def test_multi_person_ap_by_hand() -> None:
    # The toolkit's assignment: each person takes the prediction of best PCKh, not of best score.
    j = 2
    gt = np.array([[[0.0, 0.0], [0.0, 10.0]], [[100.0, 0.0], [100.0, 10.0]]])
    visible = np.array([[True, True], [True, False]])  # person 1's joint 1 is not annotated
    head = np.array([10.0, 10.0])  # threshold 5 px
    pred = np.array([
        [[1.0, 0.0], [0.0, 30.0]],      # score 0.9, PCKh 1/2 with person 0: loses person 0 to the 0.5 one
        [[101.0, 0.0], [100.0, 11.0]],  # score 0.8, PCKh 1/1 with person 1: taken; joint 1 not annotated
        [[0.0, 1.0], [0.0, 10.0]],      # score 0.5, PCKh 2/2 with person 0: taken, both joints right
        [[500.0, 0.0], [500.0, 10.0]],  # score 0.4, on an ignore box: not counted
    ])  # fmt: skip
    scores = np.array([0.9, 0.8, 0.5, 0.4])
    boxes = np.array([[0, 0, 2, 31], [100, 0, 102, 12], [0, 0, 1, 11], [499.0, 0, 501, 11]])
    ignore = np.array([[498.5, -0.5, 501.5, 11.5]])
    results = []
    for unannotated_as_fp in (True, False):
        metric = MultiPersonAP(j, alpha=0.5, unannotated_as_fp=unannotated_as_fp)
        metric.add(pred, scores, gt, visible, head, pred_boxes=boxes, ignore_boxes=ignore)
        # An image with nobody: its one prediction is a false positive for both joints, at score 0.7.
        metric.add(np.array([[[5.0, 5.0], [6.0, 6.0]]]), np.array([0.7]), np.zeros((0, j, 2)), np.zeros((0, j), bool),
                   np.zeros(0))  # fmt: skip
        results.append(metric.result())
    # Joint 0, 2 positives: .9 FP, .8 TP, .7 FP, .5 TP -> precision 1/2 at recall 1/2 and 2/4 at 1 -> AP 0.5.
    # Joint 1, 1 positive: .9 FP, .8 FP (person 1's joint 1 is not annotated), .7 FP, .5 TP -> AP 1/4.
    assert results[0]["ap_per_joint"] == pytest.approx([0.5, 0.25])
    assert results[0]["ap"] == pytest.approx(0.375)
    # Without that false positive: joint 1 is .9 FP, .7 FP, .5 TP -> AP 1/3.
    assert results[1]["ap_per_joint"] == pytest.approx([0.5, 1 / 3])


def test_multi_person_ap_order_matters() -> None:
    # Joint 0 with one positive: the best-scoring prediction is wrong, the second right -> AP 0.5.
    gt = np.array([[[0.0, 0.0]]])
    metric = MultiPersonAP(1)
    metric.add(np.array([[[50.0, 0.0]], [[0.0, 0.0]]]), np.array([0.9, 0.1]), gt, np.array([[True]]), np.array([10.0]))
    assert metric.result()["ap"] == pytest.approx(0.5)
