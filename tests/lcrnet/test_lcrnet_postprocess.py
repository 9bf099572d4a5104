"""Rescoring (eq. 6), NMS and pose proposal integration (sec 3.6) on hand-made proposals."""

from __future__ import annotations

import math

import torch

from lcrnet.postprocess import nms_poses, ppi, rescore

J = 13
LOWER = (0, 1, 2, 3)


def _pose_2d(x0: float, y0: float, size: float = 100.0) -> torch.Tensor:
    """(J, 2) px: joints on a fixed pattern inside [x0, x0 + size] x [y0, y0 + size]."""
    g = torch.Generator().manual_seed(3)
    return torch.rand(J, 2, generator=g) * size + torch.tensor([x0, y0])


def _pose_3d(offset: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(4)
    return torch.randn(J, 3, generator=g) * 0.2 + offset


def _ppi(poses_2d, poses_3d, scores, upper=None, **kw):  # type: ignore[no-untyped-def]
    n = scores.shape[0]
    args = dict(iou_thresh=0.12, t3d_m=0.13, lower_body=LOWER, upper_leg_weight=0.1, margin=0.1)
    args.update(kw)
    upper = torch.zeros(n, dtype=torch.bool) if upper is None else upper
    return ppi(poses_2d, poses_3d, scores, torch.arange(1, n + 1), upper, **args)


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
