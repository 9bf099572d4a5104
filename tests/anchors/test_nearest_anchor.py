"""The nearest-anchor rule (paper sec 3.1, D3D = mean per-joint distance) on hand-built poses: the
anchors stage (numpy and torch engines) and the model's training labels (lcrnet) give the same class;
the upper-body joints are one definition for anchors, shards and targets."""

from __future__ import annotations

import numpy as np
import torch

from posebank.anchors import assign_classes, nearest_anchor_torch
from posebank.skeleton import get_skeleton, upper_body_mask


def _hand_built() -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Anchors of two joints (metres) and poses whose nearest anchor is known by hand."""
    anchors = np.array([
        [[0.0, 0.0, 0.0], [0.0, 1.0, 0.0]],  # 0: upright
        [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]],  # 1: lying along x
        [[0.6, 0.0, 0.0], [0.6, 1.0, 0.0]],  # 2: anchor 0 shifted by 0.6 along x
    ], dtype=np.float32)  # fmt: skip
    poses = np.array([
        [[0.0, 0.0, 0.0], [0.0, 0.9, 0.1]],  # near anchor 0 (D3D 0.07)
        [[0.0, 0.0, 0.0], [0.9, 0.0, 0.0]],  # near anchor 1 (D3D 0.05)
        # One joint 1.0 off anchor 0 (D3D 0.5, squared L2 1.0) or both 0.6 off anchor 2 (D3D 0.6,
        # squared L2 0.72): the mean per-joint distance picks 0 where the L2 norm would pick 2.
        [[0.0, 0.0, 0.0], [1.0, 1.0, 0.0]],
    ], dtype=np.float32)  # fmt: skip
    return poses, anchors, [0, 1, 0]


def test_nearest_anchor_is_the_smallest_mean_per_joint_distance() -> None:
    poses, anchors, expected = _hand_built()
    l2 = ((poses[:, None] - anchors[None]) ** 2).sum(axis=(2, 3)).argmin(1)
    assert l2[2] == 2  # the case that tells D3D from L2
    assert assign_classes(poses, anchors).tolist() == expected
    assert assign_classes(poses, anchors, engine="torch", block=2).tolist() == expected
    assert nearest_anchor_torch(torch.from_numpy(poses), torch.from_numpy(anchors)).tolist() == expected


def test_training_labels_use_the_same_rule() -> None:
    from lcrnet.anchors import PoseAnchors

    skeleton = get_skeleton("j13")
    rng = np.random.default_rng(0)
    anchors_3d = rng.normal(scale=0.3, size=(5, skeleton.num_joints, 3)).astype(np.float32)
    poses = rng.normal(scale=0.3, size=(40, skeleton.num_joints, 3)).astype(np.float32)
    box = np.full((5, skeleton.num_joints, 2), 0.5, np.float32)
    model_anchors = PoseAnchors.from_numpy(anchors_3d, box, box)
    upper = torch.zeros(40, dtype=torch.bool)
    upper[::2] = True
    labels = model_anchors.assign_classes(torch.from_numpy(poses), upper)
    expected = assign_classes(poses, anchors_3d)
    assert (labels - 1 - 5 * upper.long()).tolist() == expected.tolist()


def test_upper_body_is_every_joint_but_ankles_and_knees() -> None:
    from lcrnet.anchors import upper_body_joints

    for name in ("j13", "j17"):
        sk = get_skeleton(name)
        mask = upper_body_mask(sk)
        lower = {"right_ankle", "left_ankle", "right_knee", "left_knee"}
        assert [n for n, m in zip(sk.joint_names, mask) if not m] == [n for n in sk.joint_names if n in lower]
        assert upper_body_joints(sk) == [i for i, m in enumerate(mask) if m]
