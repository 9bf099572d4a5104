"""Rescoring (eq. 6), NMS and pose proposal integration (sec 3.6) on hand-made proposals."""

from __future__ import annotations

import math

import torch

from lcrnet.postprocess import PPI_RELEASE, PPIConfig, grouping_boxes, nms_poses, pixel_iou, ppi, rescore
from posebank.skeleton import get_skeleton

J = 13
LOWER = (0, 1, 2, 3)
SKELETON = get_skeleton("j13")
TORSO_HEAD = (4, 5, 10, 11, 12)
IMAGE = (1000, 1000)  # (H, W) px: large enough that no hand-made pose is clipped unless a test wants it


def _pose_2d(x0: float, y0: float, size: float = 100.0) -> torch.Tensor:
    """(J, 2) px: joints on a fixed pattern inside [x0, x0 + size] x [y0, y0 + size]."""
    g = torch.Generator().manual_seed(3)
    return torch.rand(J, 2, generator=g) * size + torch.tensor([x0, y0])


def _pose_3d(offset: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(4)
    return torch.randn(J, 3, generator=g) * 0.2 + offset


def _ppi(poses_2d, poses_3d, scores, upper=None, image=IMAGE, **kw):  # type: ignore[no-untyped-def]
    """PPI with the paper's PCKh thresholds; every mode unless the test asks otherwise."""
    n = scores.shape[0]
    config = PPIConfig(**{"selection": "all_modes", "min_mode_score": 0.0, **kw})
    upper = torch.zeros(n, dtype=torch.bool) if upper is None else upper
    return ppi(poses_2d, poses_3d, scores, torch.arange(1, n + 1), upper, config=config, image_size=image,
               lower_body=LOWER, torso_head=TORSO_HEAD)  # fmt: skip


def test_rescore_inside_unchanged_outside_by_formula() -> None:
    box = torch.tensor([[0.0, 0.0, 100.0, 100.0]])
    inside = torch.full((1, J, 2), 50.0)
    s = torch.tensor([0.8])
    assert torch.equal(rescore(s, inside, box, 25.0), s)
    outside = inside.clone()
    outside[0, 0] = torch.tensor([130.0, 50.0])  # 30 px right of the box
    outside[0, 1] = torch.tensor([-30.0, -40.0])  # 50 px from the top-left corner
    expected = 0.8 * ((J - 2) + math.exp(-(30.0**2) / 25.0**2) + math.exp(-(50.0**2) / 25.0**2)) / J
    assert math.isclose(rescore(torch.tensor([0.8]), outside, box, 25.0).item(), expected, rel_tol=1e-6)


def test_ppi_merges_one_person_by_score_weighted_average() -> None:
    p2 = torch.stack([_pose_2d(0, 0), _pose_2d(4, 2)])
    p3 = torch.stack([_pose_3d(), _pose_3d() + 0.02])
    scores = torch.tensor([0.6, 0.2])
    out = _ppi(p2, p3, scores)
    assert out["scores"].shape == (1,)
    torch.testing.assert_close(out["scores"], torch.tensor([0.8]))
    torch.testing.assert_close(out["pose_2d"][0], (0.6 * p2[0] + 0.2 * p2[1]) / 0.8)
    torch.testing.assert_close(out["pose_3d"][0], (0.6 * p3[0] + 0.2 * p3[1]) / 0.8)
    assert out["labels"].tolist() == [1]  # the class of the top proposal


def test_ppi_keeps_far_people_apart() -> None:
    p2 = torch.stack([_pose_2d(0, 0), _pose_2d(400, 0), _pose_2d(3, 3)])
    p3 = torch.stack([_pose_3d(), _pose_3d(), _pose_3d()])
    out = _ppi(p2, p3, torch.tensor([0.5, 0.9, 0.3]))
    assert out["scores"].shape == (2,)
    torch.testing.assert_close(out["scores"], torch.tensor([0.9, 0.8]))
    torch.testing.assert_close(out["pose_2d"][0], p2[1])


def test_ppi_keeps_3d_modes_apart() -> None:
    p2 = torch.stack([_pose_2d(0, 0), _pose_2d(1, 1), _pose_2d(2, 0)])
    p3 = torch.stack([_pose_3d(), _pose_3d() + 0.5, _pose_3d() + 0.01])  # the 2nd is another 3D mode
    out = _ppi(p2, p3, torch.tensor([0.5, 0.4, 0.3]))
    torch.testing.assert_close(out["scores"], torch.tensor([0.8, 0.4]))
    torch.testing.assert_close(out["pose_3d"][1], p3[1])
    torch.testing.assert_close(out["pose_3d"][0], (0.5 * p3[0] + 0.3 * p3[2]) / 0.8)


def test_ppi_upper_body_proposals_weigh_little_on_legs() -> None:
    p2 = torch.stack([_pose_2d(0, 0), _pose_2d(2, 2)])
    p3 = torch.stack([_pose_3d(), _pose_3d() + 0.01])
    scores = torch.tensor([0.4, 0.6])
    out = _ppi(p2, p3, scores, upper=torch.tensor([False, True]))
    legs = list(LOWER)
    w_full, w_upper = 0.4, 0.6 * 0.1
    torch.testing.assert_close(out["pose_2d"][0, legs], (w_full * p2[0, legs] + w_upper * p2[1, legs]) / (w_full + w_upper))
    torch.testing.assert_close(out["pose_2d"][0, 4:], (0.4 * p2[0, 4:] + 0.6 * p2[1, 4:]) / 1.0)
    torch.testing.assert_close(out["scores"], torch.tensor([1.0]))


def test_nms_vs_ppi_on_the_same_proposals() -> None:
    p2 = torch.stack([_pose_2d(0, 0), _pose_2d(4, 2), _pose_2d(400, 0)])
    p3 = torch.stack([_pose_3d(), _pose_3d() + 0.02, _pose_3d()])
    scores = torch.tensor([0.6, 0.3, 0.5])
    keep = nms_poses(p2, scores, 0.5, 0.1)
    assert keep.tolist() == [0, 2]  # NMS keeps the top proposal of each person, unchanged
    out = _ppi(p2, p3, scores)
    torch.testing.assert_close(out["scores"], torch.tensor([0.9, 0.5]))  # PPI sums the merged scores
    torch.testing.assert_close(out["pose_2d"][0], (0.6 * p2[0] + 0.3 * p2[1]) / 0.9)
    assert not torch.allclose(out["pose_2d"][0], p2[keep[0]])


def test_ppi_empty() -> None:
    out = _ppi(torch.zeros(0, J, 2), torch.zeros(0, J, 3), torch.zeros(0))
    assert out["pose_2d"].shape == (0, J, 2) and out["pose_3d"].shape == (0, J, 3)
    assert out["scores"].shape == (0,) and out["labels"].shape == (0,)


# --- the release's selection rules, on proposal sets whose answer is known by construction ---------


def _shifted_3d(offsets: list[float]) -> torch.Tensor:
    """(N, J, 3) copies of one pose moved by each offset along x: D3D between two is |o_a - o_b| m."""
    base = _pose_3d()
    return torch.stack([base + torch.tensor([o, 0.0, 0.0]) for o in offsets])


def test_best_mode_keeps_one_pose_per_person_all_modes_keeps_every_mode() -> None:
    p2 = torch.stack([_pose_2d(0, 0), _pose_2d(1, 1), _pose_2d(2, 0)])
    p3 = _shifted_3d([0.0, 0.5, 0.01])  # two 3D modes in one 2D group: {0, 2} (0.8) and {1} (0.4)
    scores = torch.tensor([0.5, 0.4, 0.3])
    best = _ppi(p2, p3, scores, selection="best_mode")
    torch.testing.assert_close(best["scores"], torch.tensor([0.8]))
    torch.testing.assert_close(best["pose_3d"][0], (0.5 * p3[0] + 0.3 * p3[2]) / 0.8)
    every = _ppi(p2, p3, scores, selection="all_modes")
    torch.testing.assert_close(every["scores"], torch.tensor([0.8, 0.4]))


def test_a_proposal_counts_in_every_mode_it_is_near() -> None:
    # D3D: a-b 0.1, b-c 0.1, a-c 0.2 with T_3D 0.13: mode of a = {a, b}; c is left, its mode = {c, b}.
    p2 = torch.stack([_pose_2d(0, 0), _pose_2d(1, 0), _pose_2d(0, 1)])
    p3 = _shifted_3d([0.0, 0.1, 0.2])
    scores = torch.tensor([0.6, 0.3, 0.5])
    out = _ppi(p2, p3, scores, selection="all_modes")
    torch.testing.assert_close(out["scores"], torch.tensor([0.9, 0.8]))
    torch.testing.assert_close(out["pose_3d"][1], (0.5 * p3[2] + 0.3 * p3[1]) / 0.8)
    assert out["labels"].tolist() == [1, 3]  # each mode is named by its top proposal
    # Best mode: c's mode {c, b} (0.8) loses to a's {a, b} (0.9).
    torch.testing.assert_close(_ppi(p2, p3, scores, selection="best_mode")["scores"], torch.tensor([0.9]))


def test_best_mode_may_be_a_later_mode() -> None:
    # The top proposal is alone in 3D; three weaker ones agree: their mode outscores it (0.9 > 0.5).
    p2 = torch.stack([_pose_2d(0, 0), _pose_2d(1, 0), _pose_2d(0, 1), _pose_2d(1, 1)])
    p3 = _shifted_3d([0.0, 0.5, 0.51, 0.52])
    scores = torch.tensor([0.5, 0.3, 0.3, 0.3])
    out = _ppi(p2, p3, scores, selection="best_mode")
    torch.testing.assert_close(out["scores"], torch.tensor([0.9]))
    assert out["labels"].tolist() == [2]


def test_no_mode_opens_below_min_mode_score() -> None:
    p2 = torch.stack([_pose_2d(0, 0), _pose_2d(1, 1)])
    p3 = _shifted_3d([0.0, 0.5])
    scores = torch.tensor([0.6, 0.04])
    assert _ppi(p2, p3, scores, min_mode_score=0.05)["scores"].shape == (1,)
    assert _ppi(p2, p3, scores, min_mode_score=0.0)["scores"].shape == (2,)
    # The first mode of a group always opens, whatever its score.
    torch.testing.assert_close(_ppi(p2[:1], p3[:1], torch.tensor([0.01]), min_mode_score=0.05)["scores"],
                               torch.tensor([0.01]))  # fmt: skip


def test_people_at_or_below_min_person_score_are_dropped() -> None:
    p2 = torch.stack([_pose_2d(0, 0), _pose_2d(400, 0), _pose_2d(0, 400)])
    p3 = _shifted_3d([0.0, 0.0, 0.0])
    scores = torch.tensor([0.9, 0.5, 0.3])
    out = _ppi(p2, p3, scores, selection="best_mode", min_person_score=0.5)
    torch.testing.assert_close(out["scores"], torch.tensor([0.9]))  # 0.5 is "at or below": dropped


def test_torso_head_boxes_separate_people_whose_limbs_overlap() -> None:
    # Two people side by side whose arms and legs reach into each other's box: full boxes overlap
    # (IoU 0.43), torso+head boxes do not (IoU 0).
    a = torch.zeros(J, 2)
    a[list(TORSO_HEAD)] = torch.tensor([[40.0, 100.0], [60.0, 100.0], [40.0, 40.0], [60.0, 40.0], [50.0, 20.0]])
    a[[0, 1, 2, 3, 6, 7, 8, 9]] = torch.tensor([[40.0, 180.0], [150.0, 180.0], [40.0, 140.0], [120.0, 140.0],
                                                [150.0, 60.0], [30.0, 60.0], [100.0, 50.0], [30.0, 50.0]])  # fmt: skip
    b = a.clone()
    b[:, 0] = 200.0 - b[:, 0]  # the mirror image, 100 px to the right
    p2 = torch.stack([a, b])
    p3 = _shifted_3d([0.0, 0.0])
    scores = torch.tensor([0.9, 0.8])
    full = grouping_boxes(p2, IMAGE)
    assert pixel_iou(full[:1], full[1:]).item() > 0.14
    assert _ppi(p2, p3, scores, iou_thresh=0.14, iou_func="bbox")["scores"].shape == (1,)
    assert _ppi(p2, p3, scores, iou_thresh=0.14, iou_func="bbox_torsohead")["scores"].shape == (2,)


def test_grouping_boxes_are_clipped_to_the_image() -> None:
    # Two poses wholly right of a 100 px wide image: clipped, both boxes are the image's last column.
    p2 = torch.stack([_pose_2d(150, 0, 50), _pose_2d(300, 0, 50)])
    boxes = grouping_boxes(p2, (100, 100))
    assert torch.all(boxes[:, [0, 2]] == 99.0)
    p3 = _shifted_3d([0.0, 0.0])
    assert _ppi(p2, p3, torch.tensor([0.9, 0.8]), image=(100, 100))["scores"].shape == (1,)
    assert _ppi(p2, p3, torch.tensor([0.9, 0.8]), image=(1000, 1000))["scores"].shape == (2,)


def test_pixel_iou_counts_pixels() -> None:
    point = torch.tensor([[5.0, 5.0, 5.0, 5.0]])  # one pixel: area 1, IoU 1 with itself
    assert pixel_iou(point, point).item() == 1.0
    a = torch.tensor([[0.0, 0.0, 9.0, 9.0]])  # 10 x 10 pixels
    b = torch.tensor([[5.0, 0.0, 14.0, 9.0]])  # overlap 5 x 10
    assert math.isclose(pixel_iou(a, b).item(), 50.0 / 150.0, rel_tol=1e-6)


def test_release_preset() -> None:
    assert (PPI_RELEASE.iou_thresh, PPI_RELEASE.t3d_m, PPI_RELEASE.iou_func) == (0.14, 0.04, "bbox_torsohead")
    assert (PPI_RELEASE.min_mode_score, PPI_RELEASE.min_person_score, PPI_RELEASE.selection) == (0.05, 0.5, "best_mode")
    assert SKELETON.index("head") == 12 and [SKELETON.joint_names[i] for i in TORSO_HEAD][:2] == ["right_hip", "left_hip"]
