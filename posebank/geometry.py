"""Pure numpy geometry: rotations, virtual cameras, projection. No I/O, no state, no hidden randomness.

Frames (docs/design.md):
- world: metres, right-handed, +Y up (what `Motion.positions_m` holds);
- camera: metres, x right, y down, z forward (image axes), centred on the body centre.
Every function is vectorised over leading dimensions.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.floating]

# The camera at azimuth = elevation = roll = 0 stands on the world +Z axis looking towards -Z,
# with its y axis pointing down: cam = diag(1, -1, -1) @ world. det = +1, so it is a proper rotation
# and no view mirrors the body (left stays left).
WORLD_TO_CAMERA_BASE = np.diag([1.0, -1.0, -1.0])


def axis_rotation(axis: str, angle_rad: FloatArray) -> FloatArray:
    """Rotation matrices (..., 3, 3) by `angle_rad` (...) about the world axis "x", "y" or "z" (right-hand rule)."""
    angle_rad = np.asarray(angle_rad, dtype=np.float64)
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    axis = axis.lower()
    if axis not in ("x", "y", "z"):
        raise ValueError(f"axis must be x, y or z, got {axis!r}")
    i = "xyz".index(axis)
    j, k = (i + 1) % 3, (i + 2) % 3  # the plane of rotation, in right-handed order
    out = np.zeros(angle_rad.shape + (3, 3))
    out[..., i, i] = 1.0
    out[..., j, j] = c
    out[..., k, k] = c
    out[..., j, k] = -s
    out[..., k, j] = s
    return out


def euler_to_matrix(angles_rad: FloatArray, axes: str) -> FloatArray:
    """Compose elemental rotations: R = R_axes[0](a0) @ R_axes[1](a1) @ ...

    Args:
        angles_rad: (..., n) angles in radians, one per letter of `axes`.
        axes: n letters from "xyz", e.g. "zyx" (BVH channel order Z Y X gives Rz @ Ry @ Rx).

    Returns:
        (..., 3, 3) rotation matrices; the identity when `axes` is empty.
    """
    angles_rad = np.asarray(angles_rad, dtype=np.float64)
    if angles_rad.shape[-1] != len(axes):
        raise ValueError(f"{len(axes)} axes ({axes!r}) for angles of shape {angles_rad.shape}")
    if not axes:
        return np.broadcast_to(np.eye(3), angles_rad.shape[:-1] + (3, 3)).copy()
    out = axis_rotation(axes[0], angles_rad[..., 0])
    for i in range(1, len(axes)):
        out = out @ axis_rotation(axes[i], angles_rad[..., i])
    return out


def view_rotation(azimuth_rad: FloatArray, elevation_rad: FloatArray, roll_rad: FloatArray) -> FloatArray:
    """World-to-camera rotations (..., 3, 3) of virtual cameras circling the body.

    The camera turns by `azimuth_rad` about the world up axis, then looks down on the body by
    `elevation_rad` (positive: camera above the body, looking down), then rolls by `roll_rad`
    about its optical axis: R = Rz(roll) @ Rx(elevation) @ diag(1, -1, -1) @ Ry(-azimuth).
    Every result is a proper rotation (det +1). Written out in closed form: the bank computes
    tens of millions of these.
    """
    ca, sa = np.cos(azimuth_rad), np.sin(azimuth_rad)
    ce, se = np.cos(elevation_rad), np.sin(elevation_rad)
    cr, sr = np.cos(roll_rad), np.sin(roll_rad)
    zero = np.zeros_like(ca)
    # Rows of Rx(elevation) @ diag(1, -1, -1) @ Ry(-azimuth); then the roll mixes rows 0 and 1.
    row0 = (ca, zero, -sa)
    row1 = (se * sa, -ce, se * ca)
    row2 = (-ce * sa, -se, -ce * ca)
    out = np.empty(np.shape(ca) + (3, 3))
    for c in range(3):
        out[..., 0, c] = cr * row0[c] - sr * row1[c]
        out[..., 1, c] = sr * row0[c] + cr * row1[c]
        out[..., 2, c] = row2[c]
    return out


def rotate(points: FloatArray, rotations: FloatArray) -> FloatArray:
    """Apply rotations (..., 3, 3) to points (..., J, 3): p' = R p for every joint."""
    if points.shape[-1] != 3 or rotations.shape[-2:] != (3, 3):
        raise ValueError(f"need points (..., J, 3) and rotations (..., 3, 3), got {points.shape}, {rotations.shape}")
    return np.einsum("...ij,...kj->...ki", rotations, points)


def ray_to_axis(rays: FloatArray) -> FloatArray:
    """(N, 3, 3) the smallest rotations taking the directions of rays (N, 3) onto the optical axis +z
    (Rodrigues). Applied to a person seen off the optical axis along `rays`, it gives the pose as a camera
    turned to look at them would see it: what an image of that person shows, without its intrinsics."""
    a = rays / np.linalg.norm(rays, axis=1, keepdims=True)
    v = np.cross(a, np.array([0.0, 0.0, 1.0]))  # rotation axis x sin(angle)
    cos = a[:, 2]
    skew = np.zeros((len(a), 3, 3))
    skew[:, 0, 1], skew[:, 0, 2], skew[:, 1, 2] = -v[:, 2], v[:, 1], -v[:, 0]
    skew -= np.swapaxes(skew, 1, 2)
    return np.eye(3) + skew + np.einsum("nij,njk->nik", skew, skew) / (1.0 + cos)[:, None, None]


def world_to_camera(poses_world: FloatArray, rotations: FloatArray) -> FloatArray:
    """Body-centred world poses (N, J, 3) to camera frame (N, J, 3) by world-to-camera rotations (N, 3, 3)."""
    return rotate(poses_world, rotations)


def camera_to_world(poses_cam: FloatArray, rotations: FloatArray) -> FloatArray:
    """Inverse of `world_to_camera`: camera-frame poses back to the body-centred world frame."""
    return rotate(poses_cam, np.swapaxes(rotations, -1, -2))


def project_orthographic(poses_cam: FloatArray) -> FloatArray:
    """Orthographic projection (..., J, 2) of camera-frame poses (..., J, 3): keep x (right) and y (down)."""
    if poses_cam.shape[-1] != 3:
        raise ValueError(f"need (..., J, 3) camera-frame poses, got {poses_cam.shape}")
    return poses_cam[..., :2]


def heading_angle(poses_world: FloatArray, left_hip: int, right_hip: int) -> FloatArray:
    """Yaw (...) in radians of the hip line (right hip -> left hip) about the world up axis, from +X."""
    d = poses_world[..., left_hip, :] - poses_world[..., right_hip, :]
    return np.arctan2(-d[..., 2], d[..., 0])


def remove_heading(poses_world: FloatArray, left_hip: int, right_hip: int) -> FloatArray:
    """Turn (..., J, 3) poses about the world up axis so that the hip line points along +X.

    Two poses that differ only by the direction the person faces become equal: the bank draws
    azimuths uniformly anyway, so such poses carry no new information.
    """
    yaw = heading_angle(poses_world, left_hip, right_hip)
    return rotate(poses_world, axis_rotation("y", -yaw))


def masked_centre_scale(
    poses_2d: npt.NDArray[np.floating], mask: npt.NDArray[np.bool_]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Centre and scale of poses over their masked joints: the normalisation of paper eq. 9.

    Args:
        poses_2d: (..., J, 2) any float dtype and units; joints outside the mask are ignored (may be NaN).
        mask: (..., J) bool.

    Returns:
        centre: (..., 2) float64, the mean of the masked joints (0 when there are none).
        scale: (...) float64, the Frobenius norm of the centred masked joints (0 when none or all equal).
    """
    m = np.asarray(mask, dtype=bool)
    x = np.where(m[..., None], np.asarray(poses_2d, dtype=np.float64), 0.0)
    # Sums over the joints as (1, J) x (J, 2) products and a dot over the flattened joints: numpy's
    # reductions over a middle axis this short are slow (1.5x the whole function on (1500, 20, 13, 2)).
    count = np.maximum(m.sum(axis=-1), 1)[..., None]
    centre = np.matmul(m[..., None, :].astype(np.float64), x)[..., 0, :] / count
    centred = np.where(m[..., None], x - centre[..., None, :], 0.0).reshape(*x.shape[:-2], 2 * x.shape[-2])
    return centre, np.sqrt(np.einsum("...i,...i->...", centred, centred))
