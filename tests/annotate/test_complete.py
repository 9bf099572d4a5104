"""Completion of 2D poses and pseudo-3D variants from matches."""

from __future__ import annotations

import numpy as np

from posebank.annotate.complete import complete_2d, depth_transfer_3d, masked_centre_scale, match_spread, topk_weighted_3d
from posebank.skeleton import body_centre, get_skeleton

SK = get_skeleton("j13")
rng = np.random.default_rng(0)


def _pose_3d(n: int) -> np.ndarray:
    p = rng.normal(scale=0.4, size=(n, 13, 3))
    return p - body_centre(p, SK)[:, None]


def test_completion_recovers_a_scaled_shifted_bank_pose() -> None:
    match = _pose_3d(5)[..., :2]
    query = 310.0 * match + np.array([640.0, 360.0])  # the same pose in pixels
    mask = rng.random((5, 13)) < 0.6
    mask[:, :3] = True
    hidden = np.where(mask[..., None], query, np.nan)
    completed = complete_2d(hidden, mask, match)
    np.testing.assert_allclose(completed, query, atol=1e-9)


def test_annotated_joints_are_kept_exactly() -> None:
    match = _pose_3d(4)[..., :2]
    query = rng.normal(size=(4, 13, 2)) * 100 + 500
    mask = np.ones((4, 13), bool)
    mask[:, [0, 1, 2]] = False
    completed = complete_2d(query, mask, match)
    np.testing.assert_array_equal(completed[mask], query[mask])
    assert np.isfinite(completed).all()


def test_centre_scale_ignore_unmasked_nan() -> None:
    pose = np.array([[[0.0, 0.0], [2.0, 0.0], [np.nan, np.nan]]])
    c, s = masked_centre_scale(pose, np.array([[True, True, False]]))
    np.testing.assert_allclose(c, [[1.0, 0.0]])
    np.testing.assert_allclose(s, [np.sqrt(2.0)])


def test_spread_and_weighted_mean() -> None:
    base = _pose_3d(1)[0]
    matches = np.stack([base, base + [0.1, 0, 0], base + [0.3, 0, 0]])[None]
    np.testing.assert_allclose(match_spread(matches), [0.2])
    np.testing.assert_allclose(match_spread(matches[:, :1]), [0.0])
    w = topk_weighted_3d(matches, np.array([[0.0, 10.0, 10.0]]))  # far matches weigh nothing
    np.testing.assert_allclose(w[0], base, atol=1e-9)
    even = topk_weighted_3d(matches, np.array([[0.1, 0.1, 0.1]]))
    np.testing.assert_allclose(even[0], base + [0.4 / 3, 0, 0], atol=1e-9)


def test_depth_transfer_keeps_the_query_shape_and_match_depth() -> None:
    match_3d = _pose_3d(3)
    query = 200.0 * (match_3d[..., :2] + rng.normal(scale=0.02, size=(3, 13, 2))) + 100.0
    mask = np.ones((3, 13), bool)
    mask[:, 0] = False
    out = depth_transfer_3d(query, mask, match_3d[..., :2], match_3d, SK)
    np.testing.assert_allclose(body_centre(out, SK), 0.0, atol=1e-12)
    # Annotated joints: x, y are an affine image of the query's (same shape), z from the match.
    c_out, s_out = masked_centre_scale(out[..., :2], mask)
    c_q, s_q = masked_centre_scale(query, mask)
    shape_out = (out[..., :2] - c_out[:, None]) / s_out[:, None, None]
    shape_q = (query - c_q[:, None]) / s_q[:, None, None]
    np.testing.assert_allclose(shape_out[mask], shape_q[mask], atol=1e-9)
    np.testing.assert_allclose(out[..., 2] - out[..., 2].mean(1, keepdims=True),
                               match_3d[..., 2] - match_3d[..., 2].mean(1, keepdims=True), atol=1e-9)  # fmt: skip
