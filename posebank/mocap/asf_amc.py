"""Acclaim ASF/AMC reader (CMU MoCap, HDM05): an ASF skeleton and one AMC take -> `Motion`.

The entry point of the Acclaim reader. The work is done in three modules, one idea each:
- posebank.mocap.asf: the ASF skeleton file -> `AsfSkeleton` (bones, axes, dofs, hierarchy; metres).
- posebank.mocap.amc: the AMC motion file -> `AmcChannels` (raw values per frame and bone).
- posebank.mocap.acclaim_fk: `forward_kinematics`, AMC values -> (T, J, 3) joint positions in metres.
Their names are re-exported here, so ``from posebank.mocap.asf_amc import read_asf, read_amc,
forward_kinematics, read_motion`` works as before.

World frame: the files' own, right-handed with +Y up. Joint positions are metres.
Frames: AMC frame numbers count from 1 and are kept as the file gives them.
"""

from __future__ import annotations

from pathlib import Path

from .acclaim_fk import forward_kinematics
from .amc import AmcChannels, read_amc
from .asf import INCH_M, ROOT, AsfBone, AsfSkeleton, read_asf
from .motion import Motion

__all__ = [
    "INCH_M",
    "ROOT",
    "AmcChannels",
    "AsfBone",
    "AsfSkeleton",
    "forward_kinematics",
    "read_amc",
    "read_asf",
    "read_motion",
]


def read_motion(
    asf_path: str | Path,
    amc_path: str | Path,
    *,
    source: str,
    subject: str,
    sequence: str,
    fps: float = 120.0,
) -> Motion:
    """Read an ASF/AMC pair into a Motion: joints ("root", bones...) in metres, +Y up, AMC frame numbers.

    Args:
        asf_path: the subject's skeleton (CMU subjects/NN/NN.asf, HDM05 HDM_<actor>.asf).
        amc_path: one take for that skeleton.
        source: "cmu" or "hdm05".
        subject: subject / actor id ("09", "bd").
        sequence: take name ("09_12").
        fps: frame rate of the AMC (both CMU and HDM05 record at 120 Hz).

    Raises:
        MocapParseError: either file is malformed.
    """
    skeleton = read_asf(asf_path)
    amc = read_amc(amc_path, skeleton)
    positions = forward_kinematics(skeleton, amc.channels, angle_unit=amc.angle_unit)
    return Motion(
        joint_names=skeleton.joint_names,
        parents=skeleton.parents,
        positions_m=positions,
        fps=float(fps),
        source=source,
        subject=subject,
        sequence=sequence,
        path=str(amc_path),
        frame_numbers=amc.frame_numbers,
    )
