"""Human3.6M joints -> the canonical skeleton (j13 / j17) by the name table of manifests/h36m.toml,
and world sequences -> `Motion` for the bank.

The table holds for both layouts (32 official joints, 17 mmpose / VideoPose3D joints): the 17 are a
subset of the 32 under the same names. j13's head is the midpoint of neck_nose (joint 14) and
head_top (joint 15), as docs/design.md defines the head for MoCap (the skull bone's midpoint).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ..mocap.motion import Motion
from ..skeleton import Skeleton, to_canonical
from .names import FPS, manifest
from .readers import H36MSequence

# H36M's world is z up; Motion (and the bank's views) are +Y up: (x, y, z) -> (x, z, -y), a rotation
# of -90 degrees about x (det +1, so left and right stay where they are).
Z_UP_TO_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


def h36m_to_canonical(
    values: npt.NDArray[np.floating], joint_names: tuple[str, ...], skeleton: Skeleton, *, path: str = ""
) -> npt.NDArray[np.float64]:
    """Map (..., J, D) Human3.6M joint values (3D metres or 2D pixels) onto `skeleton`, giving (..., K, D).

    Raises:
        MappingError: the layout lacks a joint the table needs (names the file).
    """
    return to_canonical(values, joint_names, manifest().joints, skeleton, path=path)


def world_motion(seq: H36MSequence) -> Motion:
    """A world-frame sequence as the bank's `Motion`: +Y up, metres, 50 Hz, the source's frame numbers.

    `parents` is not used by the bank (it maps joints by name); every joint is given the root as parent.
    """
    if seq.camera is not None:
        raise ValueError(f"{seq.path}: camera-frame poses; the bank reads world positions")
    positions = seq.positions_m @ Z_UP_TO_Y_UP.T
    parents = (-1,) + (0,) * (len(seq.joint_names) - 1)
    return Motion(seq.joint_names, parents, positions, FPS, "h36m", seq.subject, seq.sequence, seq.path, seq.frames)
