"""posebank.metrics: MPJPE and rigid (Procrustes) alignment on poses moved by known rotations, shifts and scales."""

from __future__ import annotations

import numpy as np
import pytest

from posebank.metrics import mpjpe, rigid_align


def _rotation(axis: np.ndarray, degrees: float) -> np.ndarray:
    """(3, 3) the rotation by `degrees` about `axis` (Rodrigues)."""
    a = np.deg2rad(degrees)
    k = axis / np.linalg.norm(axis)
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(a) * kx + (1 - np.cos(a)) * kx @ kx


def test_mpjpe_and_rigid_alignment() -> None:
    rng = np.random.default_rng(0)
    gt = rng.normal(scale=0.3, size=(3, 13, 3))
    assert mpjpe(gt + np.array([0.03, 0.04, 0.0]), gt) == pytest.approx([0.05] * 3)
    rotated = np.stack([p @ _rotation(np.array([0.2, 1.0, 0.3]), deg).T for p, deg in zip(gt, (30, 120, -170))])
    moved = rotated + np.array([0.5, -0.2, 3.0])
    assert (mpjpe(moved, gt) > 0.1).all()
    np.testing.assert_allclose(mpjpe(rigid_align(moved, gt), gt), 0.0, atol=1e-9)
    # A mirror image is not a rotation: rigid alignment must not undo it.
    mirrored = gt * np.array([-1.0, 1.0, 1.0])
    assert (mpjpe(rigid_align(mirrored, gt), gt) > 1e-3).all()
    # Scale: rigid alignment cannot remove it, the similarity (Procrustes) alignment can.
    scaled = 1.2 * moved
    assert (mpjpe(rigid_align(scaled, gt), gt) > 1e-3).all()
    np.testing.assert_allclose(mpjpe(rigid_align(scaled, gt, scale=True), gt), 0.0, atol=1e-9)


def test_alignment_undoes_a_known_rotation_scale_and_shift_exactly() -> None:
    # A hand-made pose turned 90 degrees about y, scaled by 0.5 and shifted: the similarity maps it back.
    gt = np.array([[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 3.0]]])
    turn = _rotation(np.array([0.0, 1.0, 0.0]), 90.0)
    np.testing.assert_allclose(turn @ [1.0, 0.0, 0.0], [0.0, 0.0, -1.0], atol=1e-12)  # x -> -z
    pred = 0.5 * gt @ turn.T + np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(rigid_align(pred, gt, scale=True), gt, atol=1e-12)
    # Without scale: the best rotation and shift, the pose still half size about the ground truth's centre.
    centre = gt.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(rigid_align(pred, gt), centre + 0.5 * (gt - centre), atol=1e-12)
    # Half size about the centre: each joint is off by half its distance to the centre.
    expected = 0.5 * np.linalg.norm(gt - centre, axis=-1).mean()
    assert mpjpe(rigid_align(pred, gt), gt)[0] == pytest.approx(expected)


def test_mpjpe_broadcasts_one_pose_against_many_and_refuses_other_joint_counts() -> None:
    poses = np.zeros((4, 2, 3), np.float32)
    poses[:, 1, 0] = [0.0, 1.0, 2.0, 4.0]
    d = mpjpe(poses, poses[0])  # (4,): joint 1 moves by 0, 1, 2, 4; joint 0 never
    assert d.dtype == np.float64 and d.tolist() == [0.0, 0.5, 1.0, 2.0]
    with pytest.raises(ValueError, match="joint count"):
        mpjpe(np.zeros((2, 13, 3)), np.zeros((2, 17, 3)))
    with pytest.raises(ValueError, match="one shape"):
        rigid_align(np.zeros((2, 13, 3)), np.zeros((3, 13, 3)))
