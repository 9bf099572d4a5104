"""Anchors, ground-truth boxes, proposal labels and the regression coding (sec 3.1, 4.2)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.models.detection._utils import Matcher

from lcrnet.anchors import PoseAnchors, anchors_from_poses, upper_body_joints
from lcrnet.config import ModelConfig
from lcrnet.poses import centre_poses, pose_boxes
from lcrnet.targets import build_ground_truth, decode, encode, label_proposals


def test_encode_decode_round_trip() -> None:
    g = torch.Generator().manual_seed(0)
    n, j = 7, 13
    boxes_xy = torch.rand(n, 2, generator=g, dtype=torch.float64) * 200
    boxes = torch.cat([boxes_xy, boxes_xy + 20 + torch.rand(n, 2, generator=g, dtype=torch.float64) * 100], 1)
    poses_2d = torch.rand(n, j, 2, generator=g, dtype=torch.float64) * 300
    poses_3d = torch.randn(n, j, 3, generator=g, dtype=torch.float64)
    anchors_2d = torch.rand(n, j, 2, generator=g, dtype=torch.float64)
    anchors_3d = torch.randn(n, j, 3, generator=g, dtype=torch.float64)

    t = encode(poses_2d, poses_3d, boxes, anchors_2d, anchors_3d, 5.0)
    assert t.shape == (n, 5 * j)
    back_2d, back_3d = decode(t, boxes, anchors_2d, anchors_3d, 5.0)
    torch.testing.assert_close(back_2d, poses_2d, rtol=0, atol=1e-9)
    torch.testing.assert_close(back_3d, poses_3d, rtol=0, atol=1e-12)
    # And the other way round: decode then encode gives the deltas back.
    again = encode(*decode(t, boxes, anchors_2d, anchors_3d, 5.0), boxes, anchors_2d, anchors_3d, 5.0)
    torch.testing.assert_close(again, t, rtol=0, atol=1e-9)


def test_encode_is_box_normalised_and_scaled() -> None:
    boxes = torch.tensor([[10.0, 20.0, 110.0, 220.0]])
    anchors_2d = torch.full((1, 1, 2), 0.5)
    anchors_3d = torch.zeros((1, 1, 3))
    t = encode(torch.tensor([[[70.0, 120.0]]]), torch.tensor([[[0.1, -0.2, 0.3]]]), boxes, anchors_2d, anchors_3d, 5.0)
    # 2D: (70-10)/100 - 0.5 = 0.1, (120-20)/200 - 0.5 = 0; 3D: metres; all times 5.
    torch.testing.assert_close(t, torch.tensor([[0.5, 0.0, 0.5, -1.0, 1.5]]))


def test_pose_anchors_validate_and_lookup(anchors: PoseAnchors) -> None:
    k, j = anchors.num_anchors, anchors.num_joints
    assert anchors.num_classes == 2 * k + 1
    a2, a3 = anchors.class_poses(torch.tensor([0, 1, k, k + 1, 2 * k]))
    assert a2.shape == (5, j, 2) and a3.shape == (5, j, 3)
    assert torch.equal(a2[0], torch.zeros(j, 2))
    assert torch.equal(a2[1], anchors.poses_2d_full[0]) and torch.equal(a2[3], anchors.poses_2d_upper[0])
    assert torch.equal(a3[1], a3[3]) and torch.equal(a3[4], anchors.poses_3d[k - 1])
    with pytest.raises(ValueError, match="anchors_2d_upper"):
        PoseAnchors.from_numpy(np.zeros((3, j, 3)), np.zeros((3, j, 2)), np.zeros((2, j, 2)))
    restored = PoseAnchors.from_numpy(
        anchors.poses_3d.numpy(), anchors.poses_2d_full.numpy(), anchors.poses_2d_upper.numpy()
    )
    assert torch.equal(restored.poses_3d, anchors.poses_3d)


def test_anchors_from_poses_normalisation(skeleton, standing) -> None:  # type: ignore[no-untyped-def]
    anchors = anchors_from_poses(standing[None], skeleton, margin=0.1)
    full, upper = anchors.poses_2d_full[0], anchors.poses_2d_upper[0]
    # The joints span the box minus its 10% margin (5% each side): [0.05/1.1, 1.05/1.1] on each axis,
    # exactly as posebank.boxes.pose_box and normalise_to_box place them.
    torch.testing.assert_close(full.amin(0), torch.full((2,), 0.05 / 1.1))
    torch.testing.assert_close(full.amax(0), torch.full((2,), 1.05 / 1.1))
    ups = upper_body_joints(skeleton)
    torch.testing.assert_close(upper[ups].amax(0), torch.full((2,), 1.05 / 1.1))
    from posebank.anchors import make_anchor_set

    reference = make_anchor_set(anchors.poses_3d.numpy(), np.ones(1), skeleton)
    np.testing.assert_allclose(full.numpy(), reference.pose_2d_full[0], atol=1e-6)
    np.testing.assert_allclose(upper.numpy(), reference.pose_2d_upper[0], atol=1e-6)
    assert (upper[list(skeleton.lower_body), 1] > 1.0).all()  # the legs fall below the upper-body box
    torch.testing.assert_close(anchors.poses_3d[0][list(skeleton.torso)].mean(0), torch.zeros(3))


def test_class_is_nearest_3d_anchor_with_upper_offset(anchors: PoseAnchors, skeleton) -> None:  # type: ignore[no-untyped-def]
    k = anchors.num_anchors
    # Anchor 2 with a small perturbation, moved away from the body centre (centring must undo it).
    noisy = anchors.poses_3d[2] + 0.01 * torch.randn(anchors.num_joints, 3, generator=torch.Generator().manual_seed(1))
    poses = torch.stack([noisy + torch.tensor([0.5, 0.0, 3.0])] * 2)
    labels = anchors.assign_classes(centre_poses(poses, skeleton.torso), torch.tensor([False, True]))
    assert labels.tolist() == [3, 3 + k]
    # Agrees with a brute-force argmin of the mean per-joint distance.
    centred = centre_poses(poses, skeleton.torso)
    brute = [
        int(np.argmin([np.linalg.norm(c.numpy() - a.numpy(), axis=1).mean() for a in anchors.poses_3d]))
        for c in centred
    ]
    assert brute == [2, 2]
    from posebank.anchors import assign_classes  # the anchors stage labels poses the same way

    assert assign_classes(centred.numpy(), anchors.poses_3d.numpy()).tolist() == brute


def test_ground_truth_boxes_full_and_upper(anchors: PoseAnchors, skeleton) -> None:  # type: ignore[no-untyped-def]
    k = anchors.num_anchors
    p2 = torch.stack([anchors.poses_2d_full[1] * 100 + 10, anchors.poses_2d_full[0] * 80 + 200, torch.zeros(13, 2)])
    p3 = torch.stack([anchors.poses_3d[1], anchors.poses_3d[0], anchors.poses_3d[0]])
    visible = torch.ones(3, 13, dtype=torch.bool)
    visible[1, list(skeleton.lower_body)] = False  # person 1 is truncated: upper-body box only
    visible[2] = False  # person 2 has no annotation at all: ignored
    gt = build_ground_truth(p2, visible, p3, anchors, skeleton, margin=0.1)
    assert gt.person.tolist() == [0, 0, 1]
    assert gt.labels.tolist() == [2, 2 + k, 1 + k]
    torch.testing.assert_close(gt.boxes[0], pose_boxes(p2[0], 0.1))
    torch.testing.assert_close(gt.boxes[1], pose_boxes(p2[0, upper_body_joints(skeleton)], 0.1))
    # The anchor was normalised with the same margin, so its full-body box is the one it was drawn in.
    torch.testing.assert_close(gt.boxes[0], torch.tensor([10.0, 10.0, 110.0, 110.0]))
    assert gt.poses_2d.shape == (3, 13, 2) and gt.poses_3d.shape == (3, 13, 3)


def test_label_proposals(anchors: PoseAnchors, skeleton) -> None:  # type: ignore[no-untyped-def]
    p2 = torch.stack([anchors.poses_2d_full[1] * 100, anchors.poses_2d_full[3] * 100 + 300])
    p3 = anchors.poses_3d[[1, 3]]
    visible = torch.ones(2, 13, dtype=torch.bool)
    gt = build_ground_truth(p2, visible, p3, anchors, skeleton, margin=0.1)
    proposals = torch.tensor(
        [
            [0.0, 0.0, 100.0, 100.0],  # person 0's full box
            [5.0, 5.0, 100.0, 105.0],  # close to it
            [300.0, 300.0, 400.0, 400.0],  # person 1's full box
            [150.0, 150.0, 250.0, 250.0],  # between them: background
            [0.0, 0.0, 30.0, 30.0],  # too small: background
        ]
    )
    labels, matched = label_proposals(proposals, gt, Matcher(0.5, 0.5, allow_low_quality_matches=False))
    assert labels.tolist() == [2, 2, 4, 0, 0]
    assert gt.person[matched[:3]].tolist() == [0, 0, 1]
    empty = build_ground_truth(torch.zeros(0, 13, 2), torch.zeros(0, 13, dtype=torch.bool), torch.zeros(0, 13, 3),
                               anchors, skeleton, margin=0.1)  # fmt: skip
    labels, _ = label_proposals(proposals, empty, Matcher(0.5, 0.5))
    assert labels.tolist() == [0] * 5


def test_config_round_trip_and_validation() -> None:
    from dataclasses import asdict
    import json

    cfg = ModelConfig(num_anchors=4, min_size=(64, 96))
    assert ModelConfig.from_dict(json.loads(json.dumps(asdict(cfg)))) == cfg
    assert cfg.num_joints == 13 and cfg.num_classes == 9
    with pytest.raises(ValueError, match="backbone"):
        ModelConfig(backbone="vgg16")
    with pytest.raises(ValueError, match="integration"):
        ModelConfig(integration="mean")


def test_hflip_twice_is_identity_and_swaps_sides(skeleton, scene) -> None:  # type: ignore[no-untyped-def]
    from lcrnet.augment import hflip

    image, target = scene([(0, (10, 8, 60, 88)), (2, (70, 20, 120, 90))])
    target["visible"][0, 0] = False
    flipped_image, flipped = hflip(image, target, skeleton)
    r, l = skeleton.index("right_ankle"), skeleton.index("left_ankle")
    torch.testing.assert_close(flipped["pose_2d"][:, l, 0], image.shape[-1] - target["pose_2d"][:, r, 0])
    torch.testing.assert_close(flipped["pose_3d"][:, l, 0], -target["pose_3d"][:, r, 0])
    assert not flipped["visible"][0, l] and flipped["visible"][0, r]
    back_image, back = hflip(flipped_image, flipped, skeleton)
    assert torch.equal(back_image, image)
    for key in ("pose_2d", "visible", "pose_3d"):
        torch.testing.assert_close(back[key], target[key])
