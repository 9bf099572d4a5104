"""Property tests of posebank.geometry: rotations are proper, inverses invert, no view mirrors."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from posebank.geometry import (
    WORLD_TO_CAMERA_BASE,
    axis_rotation,
    camera_to_world,
    euler_to_matrix,
    heading_angle,
    project_orthographic,
    ray_to_axis,
    remove_heading,
    view_rotation,
    world_to_camera,
)

angles = st.floats(-10.0, 10.0, allow_nan=False, allow_infinity=False)
points = arrays(np.float64, (5, 3), elements=st.floats(-3.0, 3.0, allow_nan=False, allow_infinity=False))


@settings(max_examples=200, deadline=None)
@given(angles, angles, angles)
def test_view_rotation_is_proper(az: float, el: float, roll: float) -> None:
    r = view_rotation(np.array([az]), np.array([el]), np.array([roll]))[0]
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(r) > 0.999999  # a reflection would swap left and right


@settings(max_examples=200, deadline=None)
@given(points, angles, angles, angles)
def test_camera_world_round_trip(p: np.ndarray, az: float, el: float, roll: float) -> None:
    r = view_rotation(np.array([az]), np.array([el]), np.array([roll]))
    cam = world_to_camera(p[None], r)
    np.testing.assert_allclose(camera_to_world(cam, r)[0], p, atol=1e-10)
    # Rotations keep every distance (bone lengths survive the views).
    np.testing.assert_allclose(np.linalg.norm(cam[0, 0] - cam[0, 1]), np.linalg.norm(p[0] - p[1]), atol=1e-10)


@settings(max_examples=100, deadline=None)
@given(arrays(np.float64, (3,), elements=angles), st.sampled_from(["xyz", "zyx", "yxz", "zxy"]))
def test_euler_composition_order(a: np.ndarray, axes: str) -> None:
    expected = axis_rotation(axes[0], a[0]) @ axis_rotation(axes[1], a[1]) @ axis_rotation(axes[2], a[2])
    np.testing.assert_allclose(euler_to_matrix(a, axes), expected, atol=1e-12)


@settings(max_examples=100, deadline=None)
@given(angles, angles, angles)
def test_view_rotation_closed_form_is_the_composition(az: float, el: float, roll: float) -> None:
    composed = (axis_rotation("z", roll) @ axis_rotation("x", el) @ WORLD_TO_CAMERA_BASE @ axis_rotation("y", -az))
    np.testing.assert_allclose(view_rotation(np.array(az), np.array(el), np.array(roll)), composed, atol=1e-12)


def test_axis_rotation_right_hand_rule() -> None:
    np.testing.assert_allclose(axis_rotation("z", np.pi / 2) @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(axis_rotation("x", np.pi / 2) @ [0, 1, 0], [0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(axis_rotation("y", np.pi / 2) @ [0, 0, 1], [1, 0, 0], atol=1e-12)


def test_front_view_image_axes() -> None:
    """At azimuth = elevation = roll = 0 the camera faces a person who faces it (+Z): world up is
    image up (y < 0), the person's left (+X) is on the image right (x > 0), as in a photo."""
    r = view_rotation(np.zeros(1), np.zeros(1), np.zeros(1))[0]
    np.testing.assert_allclose(r @ [0, 1, 0], [0, -1, 0], atol=1e-12)
    np.testing.assert_allclose(r @ [1, 0, 0], [1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(r @ [0, 0, 1], [0, 0, -1], atol=1e-12)  # the person faces the camera


def test_elevation_looks_down() -> None:
    """A positive elevation puts the camera above the body: world up tilts towards the camera (z < 0)."""
    r = view_rotation(np.zeros(1), np.full(1, np.deg2rad(30)), np.zeros(1))[0]
    up = r @ [0, 1, 0]
    assert up[1] < 0 and up[2] < 0


def test_orthographic_projection_drops_depth() -> None:
    p = np.array([[[1.0, -2.0, 5.0], [0.5, 0.25, -1.0]]])
    np.testing.assert_array_equal(project_orthographic(p), p[..., :2])


@settings(max_examples=100, deadline=None)
@given(points, angles)
def test_remove_heading_is_yaw_invariant(p: np.ndarray, yaw: float) -> None:
    if np.linalg.norm((p[1] - p[0])[[0, 2]]) < 1e-3:
        return  # the hip line is vertical: its heading is undefined
    turned = p @ axis_rotation("y", yaw).T
    np.testing.assert_allclose(remove_heading(turned, 1, 0), remove_heading(p, 1, 0), atol=1e-9)
    np.testing.assert_allclose(heading_angle(remove_heading(p, 1, 0), 1, 0), 0.0, atol=1e-9)


@settings(max_examples=200, deadline=None)
@given(arrays(np.float64, (3,), elements=st.floats(-5.0, 5.0, allow_nan=False, allow_infinity=False)))
def test_ray_to_axis_turns_the_ray_onto_the_optical_axis(xy_and_depth: np.ndarray) -> None:
    ray = np.array([[xy_and_depth[0], xy_and_depth[1], abs(xy_and_depth[2]) + 0.5]])  # in front of the camera
    r = ray_to_axis(ray)[0]
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(r) > 0
    np.testing.assert_allclose(r @ (ray[0] / np.linalg.norm(ray[0])), [0.0, 0.0, 1.0], atol=1e-12)
    # The smallest such rotation: its axis is perpendicular to both the ray and the optical axis.
    axis = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    assert abs(axis[2]) < 1e-9 and abs(axis @ ray[0]) < 1e-9
