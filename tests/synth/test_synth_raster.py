"""The z-buffer rasteriser: coverage and depth of a capsule, the point query agrees with the frame bit
for bit, and the bounding-box fast path draws exactly what the whole-image baseline draws."""

from __future__ import annotations

import numpy as np

from posebank.skeleton import get_skeleton
from posebank.synth.body import body_model
from posebank.synth.config import SynthConfig
from posebank.synth.raster import capsules, pixel_of, rasterize, surface_at
from posebank.synth.render import scene_primitives
from posebank.synth.scene import sample_scene

LIGHT = np.array([0.0, 0.0, -1.0])


def test_capsule_covers_the_pixels_within_its_radius_and_bulges_towards_the_camera() -> None:
    prims = capsules(
        a_px=np.array([[10.0, 20.0]]), b_px=np.array([[50.0, 20.0]]), za_m=np.array([3.0]), zb_m=np.array([3.0]),
        radius_px=np.array([5.0]), m_per_px=np.array([0.01]), owner=np.array([7]), colour=np.ones((1, 3)),
    )  # fmt: skip
    frame = rasterize(prims, 40, 64, LIGHT)
    rows, cols = np.mgrid[0:40, 0:64]
    dist = np.hypot(np.clip(cols, 10, 50) - cols, rows - 20)
    np.testing.assert_array_equal(frame.owner == 7, dist <= 5)
    # On the axis the surface is one radius (5 px = 0.05 m) nearer than the axis; at the rim it is on it.
    assert np.isclose(frame.depth[20, 30], 3.0 - 0.05)
    assert np.isclose(frame.depth[15, 30], 3.0)
    assert np.isinf(frame.depth[0, 0]) and frame.owner[0, 0] == -1


def test_surface_at_matches_the_frame_bit_for_bit(pose_pool: np.ndarray) -> None:
    body = body_model(get_skeleton("j13"))
    config = SynthConfig(size=(160, 120), people=(3, 5), truncation_prob=0.5)
    for i in range(4):
        scene = sample_scene(np.random.default_rng(i), pose_pool, config)
        prims = scene_primitives(scene, body)
        frame = rasterize(prims, scene.height, scene.width, scene.light)
        rows, cols = np.mgrid[0 : scene.height, 0 : scene.width]
        pts = np.stack([cols.ravel(), rows.ravel()], -1).astype(np.float32)
        depth, owner, index = surface_at(prims, pts)
        np.testing.assert_array_equal(depth, frame.depth.ravel())
        np.testing.assert_array_equal(owner, frame.owner.ravel())
        np.testing.assert_array_equal(index, frame.primitive.ravel())


def test_bbox_fast_path_equals_the_whole_image_baseline(pose_pool: np.ndarray) -> None:
    body = body_model(get_skeleton("j13"))
    scene = sample_scene(np.random.default_rng(5), pose_pool, SynthConfig(size=(128, 96), people=(4, 4)))
    prims = scene_primitives(scene, body)
    fast = rasterize(prims, 96, 128, scene.light)
    slow = rasterize(prims, 96, 128, scene.light, clip_to_bbox=False)
    for name in ("depth", "owner", "primitive", "shade"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(slow, name), err_msg=name)


def test_pixel_of_rounds_half_up() -> None:
    np.testing.assert_array_equal(pixel_of(np.array([[0.49, 0.5], [-0.5, -0.51]])), [[0, 1], [0, -1]])
