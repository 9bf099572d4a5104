"""Forward kinematics of an Acclaim skeleton: AMC values -> world joint positions in metres.

Why this module exists: it is the only place that knows how ASF axes and AMC rotations combine, and it
is where reading a take spends its time, so it is vectorised over frames (the loop runs over bones).
It reads no file and never resamples or projects.

Conventions (standard Acclaim, as the CMU viewer and most readers implement them):
- Bone b with axis rotation C and AMC rotation M: R_global(b) = R_global(parent) @ C @ M @ C^T, and the
  bone's end is end(parent) + length * R_global(b) @ direction (direction is in world coordinates of
  the rest pose, so zero AMC values reproduce the ASF rest pose).
- The root joint is the root translation (AMC TX TY TZ, ASF length units -> metres); its rotation is built
  like a bone's with C from the root ``orientation`` and ``axis``.
- M applies the dof rotations in the order listed, first listed first ("rx ry rz" -> Rz @ Ry @ Rx).

World frame: the files' own, right-handed with +Y up. Joint positions are metres.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np

from .asf import ROOT, AsfBone, AsfSkeleton, FloatArray

__all__ = ["forward_kinematics"]

# Named after the reader's entry point, as before the split into modules, so that logging set up for
# "posebank.mocap.asf_amc" still sees the ignored-dof warning.
logger = logging.getLogger("posebank.mocap.asf_amc")


# The two axes an elemental rotation mixes, in cyclic order: about x it turns y towards z, etc.
_MIXED_AXES = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}


def _apply_elemental(frame: FloatArray, axis: str, cos: FloatArray, sin: FloatArray) -> None:
    """In place: frame <- frame @ R_axis(angle), per frame t.

    `frame` is (3, T, 3) with frame[j] = column j of the (T, 3, 3) matrices. Right-multiplying by an
    elemental rotation only mixes two columns, which costs a few (T, 3) multiply-adds instead of a
    stacked 3x3 matmul. `cos`, `sin` are (T, 1).
    """
    j, k = _MIXED_AXES[axis]
    col_j = frame[j].copy()
    frame[j] = col_j * cos + frame[k] * sin
    frame[k] = frame[k] * cos - col_j * sin


def _apply_dofs(frame: FloatArray, values: FloatArray, dof: Sequence[str], angle_unit: str) -> None:
    """In place: frame <- frame @ M, M the rotation of the rotation dofs (first listed applied first).

    M = R_last @ ... @ R_first, so the frame is right-multiplied by the last listed rotation first.
    """
    columns = [i for i, d in enumerate(dof) if d in ("rx", "ry", "rz")]
    if not columns:
        return
    angles = _to_radians(values[:, columns], angle_unit)
    cos, sin = np.cos(angles), np.sin(angles)
    for c in reversed(range(len(columns))):
        _apply_elemental(frame, dof[columns[c]][1], cos[:, c : c + 1], sin[:, c : c + 1])


def _to_radians(values: FloatArray, angle_unit: str) -> FloatArray:
    """`values` in `angle_unit` ("deg" or "rad") as float64 radians, same shape."""
    return np.deg2rad(values) if angle_unit == "deg" else np.asarray(values, dtype=np.float64)


def _check_channels(skeleton: AsfSkeleton, channels: Mapping[str, FloatArray]) -> int:
    """Number of frames T; ValueError when a channel is missing or mis-shaped."""
    num_frames = None
    for name, n in skeleton.channel_sizes.items():
        if n == 0:
            continue
        if name not in channels:
            raise ValueError(f"no channel for {name!r} of {skeleton.path}")
        array = channels[name]
        if array.ndim != 2 or array.shape[1] != n or (num_frames is not None and array.shape[0] != num_frames):
            raise ValueError(f"channel {name!r} has shape {array.shape}, expected ({num_frames or 'T'}, {n})")
        num_frames = array.shape[0]
    if num_frames is None:
        raise ValueError(f"{skeleton.path} has no degree of freedom: the frame count is unknown")
    return num_frames


def forward_kinematics(
    skeleton: AsfSkeleton, channels: Mapping[str, FloatArray], *, angle_unit: str = "deg"
) -> FloatArray:
    """World joint positions from AMC values, vectorised over frames (the loop runs over bones).

    Args:
        skeleton: the ASF skeleton.
        channels: name -> (T, ndof) values as `read_amc` returns them (root and every bone with dofs).
        angle_unit: "deg" or "rad", the unit of the angle values (AmcChannels.angle_unit).

    Returns:
        (T, J, 3) float64 positions in metres, world frame of the files (+Y up, right-handed), joints in
        `skeleton.joint_names` order: the root position, then each bone's end.

    Maths: with C_b the bone's axis rotation and M_b its AMC rotation, R_global(b) =
    R_global(parent) @ C_b @ M_b @ C_b^T. The loop carries F(b) = R_global(b) @ C_b = F(parent) @
    (C_parent^T @ C_b) @ M_b instead, which needs one constant 3x3 product per bone and cheap
    column mixes per dof; the bone's end is end(parent) + F(b) @ (length * C_b^T @ direction).

    Bone translation and length dofs (tx ty tz l; none in CMU or HDM05) are parsed but do not move the
    joints; a warning is logged when they are non-zero.
    """
    num_frames = _check_channels(skeleton, channels)
    empty = np.zeros((num_frames, 0))
    positions = np.empty((num_frames, len(skeleton.bones) + 1, 3))

    root_values = channels.get(ROOT, empty)
    for k, dof in enumerate(("tx", "ty", "tz")):  # a root without a translation column stays at 0
        column = skeleton.root_order.index(dof) if dof in skeleton.root_order else None
        positions[:, 0, k] = 0.0 if column is None else root_values[:, column] * skeleton.metres_per_unit
    axes = skeleton.axis_matrices  # axes[j] is C of joint j (root: C_root)
    root_frame = np.repeat(axes[0].T[:, None, :], num_frames, axis=1)  # (3, T, 3): columns of C_root
    _apply_dofs(root_frame, root_values, skeleton.root_order, angle_unit)

    # frames[j] is F of joint j as (3, T, 3): frames[j][c] is column c of the (T, 3, 3) matrices.
    frames: list[FloatArray] = [root_frame] + [empty] * len(skeleton.bones)
    parents = skeleton.parents
    for b in skeleton.fk_order:
        bone, joint = skeleton.bones[b], b + 1
        parent = parents[joint]
        values = channels.get(bone.name, empty)
        _warn_ignored_dofs(bone, values)
        change = axes[parent].T @ axes[joint]  # C_parent^T @ C_b
        # F(parent) @ change, on the column layout: new column j = sum_k change[k, j] * column k.
        frame = (change.T @ frames[parent].reshape(3, -1)).reshape(3, num_frames, 3)
        _apply_dofs(frame, values, bone.dof, angle_unit)
        frames[joint] = frame
        offset = axes[joint].T @ (bone.length_m * np.asarray(bone.direction))
        positions[:, joint] = positions[:, parent] + (offset @ frame.reshape(3, -1)).reshape(num_frames, 3)
    return positions


def _warn_ignored_dofs(bone: AsfBone, values: FloatArray) -> None:
    ignored = [i for i, d in enumerate(bone.dof) if d not in ("rx", "ry", "rz")]
    if ignored and np.any(values[:, ignored] != 0):
        logger.warning("bone %s: translation/length dofs %s are ignored by forward kinematics",
                       bone.name, [bone.dof[i] for i in ignored])  # fmt: skip

