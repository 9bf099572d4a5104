"""Read BVH (Biovision Hierarchy) files into a `Motion`: joint positions in metres, right-handed, +Y up.

Why this module exists: the cgspeed conversions of the CMU database (and many other archives) ship as
BVH, a joint hierarchy with per-frame Euler angles. This is the reader's entry point: it parses the text
(posebank.mocap.bvh_parse), infers the units (posebank.mocap.bvh_units) and runs forward kinematics
(posebank.mocap.bvh_fk); it never resamples, centres, orients or projects (posebank.mocap.motion). It also
picks the manifest joint table that fits a file's joint names (`bvh_joint_table`).

Conventions (the details are in the modules that apply them):
- Joints: every ROOT/JOINT, plus every ``End Site`` as a joint named ``"<parent>_end"`` (so the head top
  ``Head_end`` exists). A joint's position is its *origin*: in the cgspeed naming "RightKnee" is the knee.
- Position channels replace OFFSET components; rotations apply in the order their channels are listed,
  "Zrotation Xrotation Yrotation" giving R = Rz @ Rx @ Ry (bvh_fk). Degrees.
- World frame: BVH is right-handed, +Y up, like the ASF, so no axis change is made.
- Frame rate: 1 / Frame Time, snapped to an integer rate when the written Frame Time is that rate's
  period to the written precision (".0083333" -> 120 Hz exactly, not 120.0005).
- Units: BVH has no unit field; see `detect_unit_scale`.

The names of the other BVH modules are re-exported here, so ``from posebank.mocap.bvh import ...`` works
for all of them as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..dataset_manifest import DatasetManifest
from ..errors import MappingError
from .bvh_fk import forward_kinematics, rest_positions
from .bvh_parse import BvhHierarchy, BvhJoint, parse_bvh, read_bvh_hierarchy
from .bvh_units import PLAUSIBLE_LEG_LENGTH_M, UNIT_SCALES_M, detect_unit_scale, frame_time_to_fps, rest_leg_length
from .motion import Motion

__all__ = [
    "PLAUSIBLE_LEG_LENGTH_M",
    "UNIT_SCALES_M",
    "BvhHierarchy",
    "BvhJoint",
    "bvh_joint_table",
    "detect_unit_scale",
    "forward_kinematics",
    "frame_time_to_fps",
    "read_bvh",
    "read_bvh_hierarchy",
    "rest_leg_length",
    "rest_positions",
]


def read_bvh(
    path: str | Path,
    *,
    source: str = "bvh",
    subject: str | None = None,
    sequence: str | None = None,
    unit_scale_m: float | None = None,
) -> Motion:
    """Read a BVH file and compute its joint positions by forward kinematics.

    Args:
        path: the .bvh file (LF or CRLF, tabs or spaces).
        source: the Motion's source tag.
        subject: subject id; default: the file stem before its first "_" (cgspeed "131_01" -> "131"),
            else the folder name.
        sequence: sequence name; default: the file stem.
        unit_scale_m: metres per file unit; None detects it (`detect_unit_scale`).

    Returns:
        Motion with J = joints + End Sites, positions_m (T, J, 3) float64 world metres, right-handed,
        +Y up, fps from the Frame Time, frame_numbers 0..T-1.

    Raises:
        MocapParseError: unreadable or malformed file (names the file and the 1-based line), or a length
            unit that cannot be detected.
    """
    path = Path(path)
    hierarchy, frame_time, values = parse_bvh(path)
    scale = detect_unit_scale(hierarchy, path=path) if unit_scale_m is None else float(unit_scale_m)
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"unit_scale_m must be a positive number, got {unit_scale_m!r}")
    positions = forward_kinematics(hierarchy, values)
    stem = path.stem
    return Motion(
        joint_names=hierarchy.joint_names,
        parents=hierarchy.parents,
        positions_m=positions * scale,
        fps=frame_time_to_fps(frame_time),
        source=source,
        subject=subject if subject is not None else (stem.split("_")[0] if "_" in stem else path.parent.name),
        sequence=sequence if sequence is not None else stem,
        path=str(path),
    )



def bvh_joint_table(
    joint_names: Sequence[str],
    manifest: DatasetManifest,
    *,
    path: str | Path = "",
) -> dict[str, tuple[str, ...]]:
    """The manifest joint table (canonical name -> BVH joint names) that fits this file's joints.

    Tables are tried in order: the default [joints] (cgspeed CMU naming), then each [profiles.<name>] in
    manifest order; the first whose names are all present wins. Names are compared with any namespace
    prefix removed ("mixamorig:LeftArm" matches "LeftArm"); the returned table holds the file's own names.

    Raises:
        MappingError: no table fits; names the file and, per table, the joints it lacks.
    """
    lookup = _name_lookup(joint_names)
    tables = [("joints", manifest.joints)] + list(manifest.profiles.items())
    missing_by_table: dict[str, list[str]] = {}
    for table_name, table in tables:
        missing = sorted({n for parts in table.values() for n in parts if _strip_namespace(n) not in lookup})
        if not missing:
            return {canonical: tuple(lookup[_strip_namespace(n)] for n in parts) for canonical, parts in table.items()}
        missing_by_table[table_name] = missing
    detail = "; ".join(f"[{name}] lacks {', '.join(m)}" for name, m in missing_by_table.items())
    raise MappingError(path, f"no BVH joint table of manifest {manifest.name!r} fits this skeleton: {detail}")



def _strip_namespace(name: str) -> str:
    return name.rsplit(":", 1)[-1]


def _name_lookup(joint_names: Sequence[str]) -> Mapping[str, str]:
    """Bare name -> the file's name; an exact name wins, a bare name two namespaces share is left out."""
    by_bare: dict[str, list[str]] = {}
    for name in joint_names:
        by_bare.setdefault(_strip_namespace(name), []).append(name)
    lookup = {}
    for bare, names in by_bare.items():
        if bare in names:
            lookup[bare] = bare
        elif len(names) == 1:
            lookup[bare] = names[0]
    return lookup
