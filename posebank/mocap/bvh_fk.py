"""Forward kinematics of a BVH hierarchy: channel values -> joint positions in file units.

Why this module exists: BVH readers disagree on how position channels and rotation orders combine, so
the rules are written down here, once, next to the only code that applies them. Vectorised over frames
(the loop runs over joints). It reads no file and knows no units (posebank.mocap.bvh_units).

Conventions:
- A joint's position is its *origin*: in the cgspeed naming "RightKnee" is the knee.
- Local translation: the OFFSET, except that each position channel present (Xposition, Yposition,
  Zposition) *replaces* that component of it. Exporters that write 6 channels on every joint
  (MotionBuilder and others) put the bone's own offset in its position channels, so adding them to the
  OFFSET would double every bone; Blender's importer likewise moves a root by (channel value - OFFSET) from
  its rest position, i.e. puts it at the channel value. For a root with OFFSET 0 (cgspeed) both agree.
- Local rotation: the product of the elemental rotations in the order the rotation channels are listed,
  e.g. "Zrotation Xrotation Yrotation" gives R = Rz @ Rx @ Ry (posebank.geometry.euler_to_matrix).
  Each joint has its own order (131_01.bvh mixes ZYX on legs and spine with ZXY on the arms). Degrees.
- Global: R_g = R_g(parent) @ R_local; p = p(parent) + R_g(parent) @ t_local.
- World frame: BVH is right-handed, +Y up, like the ASF, so no axis change is made.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ..geometry import euler_to_matrix
from .bvh_parse import CHANNEL_KINDS, BvhHierarchy

__all__ = ["forward_kinematics", "rest_positions"]


def forward_kinematics(hierarchy: BvhHierarchy, values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Global joint positions from channel values, vectorised over frames (a loop over joints only).

    Args:
        hierarchy: the parsed HIERARCHY.
        values: (T, C) channel values of the MOTION lines (file units, degrees).

    Returns:
        (T, J, 3) float64 positions in file units, in the file's world frame.
    """
    joints = hierarchy.joints
    translations, local_rotations = _local_transforms(hierarchy, values)
    has_children = np.zeros(len(joints), dtype=bool)
    has_children[[j.parent for j in joints if j.parent >= 0]] = True
    positions = np.empty_like(translations)
    rotations = np.empty_like(local_rotations)
    for j, joint in enumerate(joints):
        if joint.parent < 0:
            positions[:, j] = translations[:, j]
            rotations[:, j] = local_rotations[:, j]
            continue
        parent_rotation = rotations[:, joint.parent]
        positions[:, j] = positions[:, joint.parent] + np.einsum("tij,tj->ti", parent_rotation, translations[:, j])
        if has_children[j]:  # a leaf's orientation moves no joint
            rotations[:, j] = parent_rotation @ local_rotations[:, j]
    return positions


def rest_positions(hierarchy: BvhHierarchy) -> npt.NDArray[np.float64]:
    """(J, 3) joint positions of the rest pose (all channels zero, OFFSETs only), root at the origin."""
    positions = np.zeros((len(hierarchy.joints), 3))
    for j, joint in enumerate(hierarchy.joints):
        if joint.parent >= 0:
            positions[j] = positions[joint.parent] + joint.offset
    return positions


def _local_transforms(
    hierarchy: BvhHierarchy, values: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(T, J, 3) local translations and (T, J, 3, 3) local rotations of every joint (module docstring).

    Rotations are built in one call per distinct channel order rather than per joint: a file has one to
    three orders, and that is where forward kinematics spends its time.
    """
    num_frames, joints = values.shape[0], hierarchy.joints
    translations = np.repeat(np.stack([j.offset for j in joints])[None], num_frames, axis=0)
    by_axes: dict[str, tuple[list[int], list[list[int]]]] = {}
    for j, joint in enumerate(joints):
        rotation_columns = []
        for k, channel in enumerate(joint.channels):
            kind, axis = CHANNEL_KINDS[channel.lower()]
            if kind == "position":
                translations[:, j, int(axis)] = values[:, joint.first_column + k]  # replaces the OFFSET component
            else:
                rotation_columns.append(joint.first_column + k)
        members, columns = by_axes.setdefault(joint.rotation_axes, ([], []))
        members.append(j)
        columns.append(rotation_columns)
    rotations = np.empty((num_frames, len(joints), 3, 3))
    for axes, (members, columns) in by_axes.items():
        angles = np.deg2rad(values[:, np.array(columns, dtype=np.int64).reshape(len(members), len(axes))])
        rotations[:, members] = euler_to_matrix(angles, axes)  # (T, n, len(axes)) -> (T, n, 3, 3)
    return translations, rotations

