"""Deduplication: exact greedy semantics, determinism, yaw invariance, and no quadratic cost."""

from __future__ import annotations

import numpy as np

from posebank.bank.dedup import deduplicate, greedy_keep_mask, mpjpe
from posebank.geometry import axis_rotation, remove_heading
from posebank.skeleton import get_skeleton

SK = get_skeleton("j13")


def _random_walk(n: int, seed: int, step_m: float = 0.004) -> np.ndarray:
    """A smooth-ish sequence of 13-joint poses in metres (a random walk of a random pose)."""
    rng = np.random.default_rng(seed)
    base = rng.normal(scale=0.3, size=(13, 3))
    return (base + np.cumsum(rng.normal(scale=step_m, size=(n, 13, 3)), axis=0)).astype(np.float64)


def _brute_force_keep(poses: np.ndarray, threshold_m: float) -> np.ndarray:
    keep = np.zeros(len(poses), bool)
    for i in range(len(poses)):
        kept = np.flatnonzero(keep)
        keep[i] = not (len(kept) and (mpjpe(poses[kept], poses[i]) <= threshold_m).any())
    return keep


def test_greedy_matches_brute_force_definition() -> None:
    # Long enough to cross several chunks and build several trees of kept poses.
    poses = np.concatenate([_random_walk(1500, 2), _random_walk(1500, 3)[::-1], _random_walk(1200, 2, 0.002)])
    for threshold in (0.006, 0.015):
        np.testing.assert_array_equal(greedy_keep_mask(poses, threshold), _brute_force_keep(poses, threshold))


def test_replayed_take_matches_brute_force() -> None:
    # A take played again with a little noise: nearly every row duplicates a pose kept in an earlier
    # chunk, the case where rows are asked in several rounds and then all at once.
    take = _random_walk(1100, 6, 0.006)
    noise = np.random.default_rng(7).normal(scale=0.001, size=take.shape)
    poses = np.concatenate([take, take + noise, take[::-1] * 1.02])
    np.testing.assert_array_equal(greedy_keep_mask(poses, 0.01), _brute_force_keep(poses, 0.01))


def test_kept_poses_are_far_apart_and_every_dropped_pose_is_covered() -> None:
    poses = _random_walk(500, 3)
    keep = deduplicate(poses, SK, 20.0)
    assert 0 < keep.sum() < len(poses)
    # Dedup compares poses with their heading removed.
    aligned = remove_heading(poses, SK.index("left_hip"), SK.index("right_hip"))
    kept = aligned[keep]
    d = mpjpe(kept[:, None], kept[None]) + np.eye(len(kept)) * 1e9
    assert d.min() > 0.020
    for i in np.flatnonzero(~keep):
        earlier_kept = np.flatnonzero(keep[:i])
        assert mpjpe(aligned[earlier_kept], aligned[i]).min() <= 0.020


def test_turned_copy_is_a_duplicate() -> None:
    pose = _random_walk(1, 4)[0]
    turned = pose @ axis_rotation("y", 1.3).T
    keep = deduplicate(np.stack([pose, turned]), SK, 1.0)
    np.testing.assert_array_equal(keep, [True, False])


def test_zero_threshold_keeps_all_and_is_deterministic() -> None:
    poses = _random_walk(200, 5)
    assert deduplicate(poses, SK, 0.0).all()
    np.testing.assert_array_equal(deduplicate(poses, SK, 25.0), deduplicate(poses.copy(), SK, 25.0))


def test_exact_bound_is_inclusive() -> None:
    a = np.zeros((13, 3))
    b = a.copy()
    b[:, 0] = 0.02  # every joint moved by exactly 20 mm
    np.testing.assert_array_equal(greedy_keep_mask(np.stack([a, b]), 0.02), [True, False])
