"""A crude body around a skeleton: capsules for limbs, neck and spine, a sphere for the head and one
for the hair, two triangles for the torso, each with a colour slot (skin, top, bottom, ...).

The hair sits on the back of the head: without it the body is front-back symmetric and a detector
could not tell a person facing the camera from one facing away, i.e. left from right.

Every joint is the end of at least one capsule (the head is its sphere's centre), so the drawn
limbs pass exactly through the 2D joints. Joints are named, never indexed: the same body dresses j13
and j17 (which has its own pelvis/spine/thorax/neck joints to run the spine and neck through).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..skeleton import Skeleton
from .raster import AMBIENT, DIFFUSE, Primitives, capsules, concatenate, triangles

# Colour slots of a person's palette.
SKIN, TOP, BOTTOM, FOREARM, SHIN, HAIR = range(6)
NUM_SLOTS = 6

_MID_SHOULDERS = ("right_shoulder", "left_shoulder")
# An end of a capsule: a joint name, a tuple of names (their mean) or {name: weight}.
End = str | tuple[str, ...] | dict[str, float]
# (end a, end b, radius in metres, slot).
_LIMBS: tuple[tuple[End, End, float, int], ...] = (
    ("right_ankle", "right_knee", 0.050, SHIN), ("left_ankle", "left_knee", 0.050, SHIN),
    ("right_knee", "right_hip", 0.068, BOTTOM), ("left_knee", "left_hip", 0.068, BOTTOM),
    ("right_hip", "left_hip", 0.072, BOTTOM),
    ("right_shoulder", "right_hip", 0.065, TOP), ("left_shoulder", "left_hip", 0.065, TOP),
    ("right_shoulder", "left_shoulder", 0.060, TOP),
    ("right_elbow", "right_shoulder", 0.045, TOP), ("left_elbow", "left_shoulder", 0.045, TOP),
    ("right_wrist", "right_elbow", 0.037, FOREARM), ("left_wrist", "left_elbow", 0.037, FOREARM),
)  # fmt: skip
_HEAD_RADIUS = 0.105
# The MPII head size (0.6 x the head box diagonal) of this head: its box is the sphere's square, so
# 0.6 * sqrt(2) * 2r = 0.178 m. A person drawn at s px/m has head size HEAD_SIZE_M * s px (PCKh).
HEAD_SIZE_M = 0.6 * np.sqrt(2.0) * 2 * _HEAD_RADIUS
# The hair: a sphere of this radius, moved back (away from where the chest faces) and up from the
# head centre, so it shows around the face from the front and covers the head from behind.
_HAIR_RADIUS = 0.100
_HAIR_BACK_M = 0.040
_HAIR_UP_M = 0.025
_NECK_RADIUS = 0.050
_SPINE_RADIUS = 0.105
# Spine and neck: through j17's own joints where the skeleton has them, else through midpoints.
_AXIAL_J17 = (("pelvis", "spine", _SPINE_RADIUS, TOP), ("spine", "thorax", _SPINE_RADIUS, TOP),
              ("thorax", "neck", _NECK_RADIUS, SKIN), ("neck", "head", _NECK_RADIUS, SKIN))  # fmt: skip
# The spine starts a little above the hips, or its round end would hang below them like a belly.
_LOW_SPINE = {"right_hip": 0.4, "left_hip": 0.4, "right_shoulder": 0.1, "left_shoulder": 0.1}
_AXIAL_MID = ((_LOW_SPINE, _MID_SHOULDERS, _SPINE_RADIUS, TOP), (_MID_SHOULDERS, "head", _NECK_RADIUS, SKIN))
_TORSO_TRIANGLES = (("right_shoulder", "left_shoulder", "left_hip"), ("right_shoulder", "left_hip", "right_hip"))


@dataclass(frozen=True)
class BodyModel:
    """Primitives that dress a skeleton, in metres, independent of any image.

    Attributes:
        ends_a, ends_b: (C, J) float64 weights: a capsule end is a weighted mean of joints.
        radii_m: (C,) capsule radii (a zero-length capsule is a sphere).
        slots: (C,) colour slot of each capsule.
        triangles: (T, 3) joint indices of the torso triangles; triangle_slots: (T,).
        joint_radius_m: (J,) radius of the thickest capsule that ends exactly at each joint: how far
            its own surface can stand in front of it (for the head: the hair's reach).
        shoulders, hips: (right, left) joint indices, for the facing direction; head: its index.
    """

    ends_a: npt.NDArray[np.float64]
    ends_b: npt.NDArray[np.float64]
    radii_m: npt.NDArray[np.float64]
    slots: npt.NDArray[np.int64]
    triangles: npt.NDArray[np.int64]
    triangle_slots: npt.NDArray[np.int64]
    joint_radius_m: npt.NDArray[np.float64]
    shoulders: tuple[int, int]
    hips: tuple[int, int]
    head: int


def _weights(end: End, skeleton: Skeleton) -> npt.NDArray[np.float64]:
    if isinstance(end, str):
        end = (end,)
    if isinstance(end, tuple):
        end = {n: 1.0 / len(end) for n in end}
    w = np.zeros(skeleton.num_joints)
    for name, weight in end.items():
        w[skeleton.index(name)] += weight
    return w


def body_model(skeleton: Skeleton) -> BodyModel:
    """The body of `skeleton` (any canonical joint set that has the j13 joints)."""
    axial = _AXIAL_J17 if all(n in skeleton.joint_names for n in ("pelvis", "spine", "thorax", "neck")) else _AXIAL_MID
    parts = _LIMBS + axial + (("head", "head", _HEAD_RADIUS, SKIN),)
    ends_a = np.stack([_weights(a, skeleton) for a, _, _, _ in parts])
    ends_b = np.stack([_weights(b, skeleton) for _, b, _, _ in parts])
    radii = np.array([r for _, _, r, _ in parts])
    joint_radius = np.zeros(skeleton.num_joints)
    for ends in (ends_a, ends_b):
        c, j = np.nonzero(ends == 1.0)
        np.maximum.at(joint_radius, j, radii[c])
    if (joint_radius == 0).any():
        missing = [skeleton.joint_names[j] for j in np.flatnonzero(joint_radius == 0)]
        raise ValueError(f"body model leaves joint(s) {missing} of {skeleton.name} undrawn")
    head = skeleton.index("head")
    joint_radius[head] = max(joint_radius[head], _HAIR_RADIUS + np.hypot(_HAIR_BACK_M, _HAIR_UP_M))
    tris = np.array([[skeleton.index(n) for n in t] for t in _TORSO_TRIANGLES])
    return BodyModel(
        ends_a=ends_a, ends_b=ends_b, radii_m=radii, slots=np.array([s for *_, s in parts]),
        triangles=tris, triangle_slots=np.full(len(tris), TOP), joint_radius_m=joint_radius,
        shoulders=(skeleton.index("right_shoulder"), skeleton.index("left_shoulder")),
        hips=(skeleton.index("right_hip"), skeleton.index("left_hip")), head=head,
    )  # fmt: skip


def _hair_offset_m(body: BodyModel, pose_3d_m: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """(3,) camera-frame offset of the hair sphere from the head centre, metres."""
    right_to_left = pose_3d_m[body.shoulders[1]] - pose_3d_m[body.shoulders[0]]
    up = pose_3d_m[list(body.shoulders)].mean(0) - pose_3d_m[list(body.hips)].mean(0)
    up /= max(float(np.linalg.norm(up)), 1e-9)
    # (left - right) x up points where the chest faces: -z (to the camera) for a person facing it.
    forward = np.cross(right_to_left, up)
    forward /= max(float(np.linalg.norm(forward)), 1e-9)
    return _HAIR_UP_M * up - _HAIR_BACK_M * forward


def dress_person(
    body: BodyModel,
    pose_2d_px: npt.NDArray[np.floating],
    depth_m: npt.NDArray[np.floating],
    pose_3d_m: npt.NDArray[np.floating],
    scale_px_per_m: float,
    thickness: float,
    palette: npt.NDArray[np.floating],
    owner: int,
    light: npt.NDArray[np.floating],
) -> Primitives:
    """The primitives of one person.

    Args:
        body: the body model.
        pose_2d_px: (J, 2) joints in the image, px.
        depth_m: (J,) joint depths, metres from the camera.
        pose_3d_m: (J, 3) body-centred camera-frame pose (for the torso's facing).
        scale_px_per_m: px per metre of this person (orthographic).
        thickness: factor on all radii.
        palette: (NUM_SLOTS, 3) RGB in [0, 1].
        owner: the person's id in the id buffer.
        light: (3,) unit vector towards the light, camera frame.
    """
    a, b = body.ends_a @ pose_2d_px, body.ends_b @ pose_2d_px
    za, zb = body.ends_a @ depth_m, body.ends_b @ depth_m
    radii_m = body.radii_m
    slots = body.slots
    # The hair: one more sphere, placed from the 3D pose (offsets scale like the joints).
    hair = _hair_offset_m(body, pose_3d_m) * thickness
    hair_px = pose_2d_px[body.head] + scale_px_per_m * hair[:2]
    a, b = np.vstack([a, hair_px]), np.vstack([b, hair_px])
    za, zb = np.append(za, depth_m[body.head] + hair[2]), np.append(zb, depth_m[body.head] + hair[2])
    radii_m, slots = np.append(radii_m, _HAIR_RADIUS), np.append(slots, HAIR)
    # At least one pixel of radius: the pixel nearest a joint (<= 0.71 px away) is then always covered.
    radius_px = np.maximum(radii_m * thickness * scale_px_per_m, 1.0)
    n = len(radius_px)
    caps = capsules(a, b, za, zb, radius_px, np.full(n, 1.0 / scale_px_per_m), np.full(n, owner), palette[slots])
    v3 = pose_3d_m[body.triangles]  # (T, 3, 3)
    normal = np.cross(v3[:, 1] - v3[:, 0], v3[:, 2] - v3[:, 0])
    normal /= np.maximum(np.linalg.norm(normal, axis=-1, keepdims=True), 1e-9)
    normal *= -np.sign(normal[:, 2:3] + 1e-12)  # the face seen is the one turned to the camera (-z)
    shade = AMBIENT + DIFFUSE * np.maximum(normal @ light, 0.0)
    tris = triangles(
        pose_2d_px[body.triangles], depth_m[body.triangles], np.full(len(v3), owner), palette[body.triangle_slots], shade
    )
    return concatenate([tris, caps])
