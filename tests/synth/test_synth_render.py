"""Rendering and labels: joints lie on their own person's drawing, occlusion follows the depth order
(between people and within one), visibility ends at the image border."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import rotate_y

from posebank.skeleton import get_skeleton
from posebank.synth import SynthConfig, body_model, make_scene, render_scene, sample_scene
from posebank.synth.raster import pixel_of

SKELETON = get_skeleton("j13")
BODY = body_model(SKELETON)
TORSO = list(SKELETON.torso)


def _ids_at_joints(rendered, poses_2d: np.ndarray) -> np.ndarray:  # noqa: ANN001
    pix = pixel_of(poses_2d)
    h, w = rendered.person_ids.shape
    return rendered.person_ids[np.clip(pix[..., 1], 0, h - 1), np.clip(pix[..., 0], 0, w - 1)]


def test_visible_joints_lie_on_their_own_person(pose_pool: np.ndarray) -> None:
    config = SynthConfig(size=(256, 192), people=(2, 5), truncation_prob=0.5)
    checked = 0
    for i in range(12):
        scene = sample_scene(np.random.default_rng(100 + i), pose_pool, config)
        r = render_scene(scene, BODY)
        ids = _ids_at_joints(r, r.labels.poses_2d)
        owner = np.broadcast_to(np.arange(scene.num_people)[:, None], ids.shape)
        vis = r.labels.visible
        np.testing.assert_array_equal(ids[vis], owner[vis])
        # Inside the image, a joint drawn over by someone else is occluded.
        other = r.labels.inside & (ids != owner)
        assert r.labels.occluded[other].all()
        checked += vis.sum()
    assert checked > 100


def test_the_person_in_front_hides_the_torso_of_the_one_behind(standing: np.ndarray) -> None:
    poses = np.stack([standing, standing])
    # Person 0 stands nearer (2 m) and larger, straight in front of person 1 (5 m); all in the image.
    placement = dict(scales=[110, 80], offsets=[[128, 128], [128, 118]], size=(256, 256))
    scene = make_scene(poses, distances=[2.0, 5.0], **placement)
    r = render_scene(scene, BODY)
    front, back = r.labels.occluded
    assert not front.any() and r.labels.visible[0].all()
    assert back[TORSO].all() and back[SKELETON.index("head")]
    ids = _ids_at_joints(r, r.labels.poses_2d)
    np.testing.assert_array_equal(back, ids[1] == 0)  # hidden exactly where the front person is drawn
    # Swap the depths: now the small person is in front and the large one is hidden behind it.
    swapped = make_scene(poses, distances=[5.0, 2.0], **placement)
    r2 = render_scene(swapped, BODY)
    assert not r2.labels.occluded[1].any()
    hips = [SKELETON.index("right_hip"), SKELETON.index("left_hip")]
    assert r2.labels.occluded[0][hips].all()
    np.testing.assert_array_equal(r2.labels.occluded[0], _ids_at_joints(r2, r2.labels.poses_2d)[0] == 1)


def test_a_side_view_hides_the_far_side_of_the_body(standing: np.ndarray) -> None:
    # Turned 90 degrees about the vertical, the person's left side faces the camera (z < 0).
    pose = rotate_y(standing, 90.0).astype(np.float32)
    # (The near hip is not listed: the near arm hangs in front of it, and hides it.)
    near = ["left_shoulder", "left_elbow", "left_wrist", "left_knee", "left_ankle", "head"]
    far = ["right_shoulder", "right_elbow", "right_hip", "right_knee"]
    assert all(pose[SKELETON.index(n), 2] < pose[SKELETON.index(f), 2] for n in near[:2] for f in far)
    r = render_scene(make_scene(pose[None], [200], [[128, 128]], [3.0], size=(256, 256)), BODY)
    occluded = r.labels.occluded[0]
    assert not any(occluded[SKELETON.index(n)] for n in near)
    assert all(occluded[SKELETON.index(n)] for n in far)


def test_joints_outside_the_image_are_not_visible(standing: np.ndarray) -> None:
    # Knees and ankles below the bottom border.
    scene = make_scene(standing[None], [150], [[100, 120]], [3.0], size=(200, 200))
    r = render_scene(scene, BODY)
    inside = r.labels.inside[0]
    ankles = [SKELETON.index("right_ankle"), SKELETON.index("left_ankle")]
    assert not inside[ankles].any() and not r.labels.visible[0][ankles].any()
    assert inside[TORSO].all() and r.labels.visible[0][TORSO].all()
    np.testing.assert_array_equal(inside, (r.labels.poses_2d[0, :, 1] < 199.5) & (r.labels.poses_2d[0, :, 1] >= -0.5))


def test_pose_2d_is_the_scaled_bank_pose(pose_pool: np.ndarray) -> None:
    scene = sample_scene(np.random.default_rng(3), pose_pool, SynthConfig())
    expected = scene.scales[:, None, None] * scene.poses_3d[..., :2] + scene.offsets[:, None, :]
    np.testing.assert_allclose(scene.poses_2d, expected)
    # Larger people are nearer.
    order = np.argsort(scene.scales)
    assert (np.diff(scene.distances[order]) <= 0).all()


def test_render_shapes_and_background(standing: np.ndarray) -> None:
    scene = make_scene(standing[None], [100], [[64, 48]], [3.0], size=(128, 96))
    background = np.zeros((96, 128, 3), np.uint8)
    r = render_scene(scene, BODY, background)
    assert r.image.shape == (96, 128, 3) and r.image.dtype == np.uint8
    assert (r.image[r.person_ids < 0] == 0).all() and (r.image[r.person_ids == 0].max(axis=-1) > 0).all()
    with pytest.raises(ValueError, match="background"):
        render_scene(scene, BODY, np.zeros((10, 10, 3), np.uint8))
