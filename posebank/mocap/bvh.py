"""Read BVH (Biovision Hierarchy) files into a `Motion`: joint positions in metres, right-handed, +Y up.

Why this module exists: the cgspeed conversions of the CMU database (and many other archives) ship as
BVH, a joint hierarchy with per-frame Euler angles. This reader parses the text and runs forward
kinematics; it never resamples, centres, orients or projects (posebank.motion).

Conventions (written out because BVH readers disagree on them):
- Joints: every ROOT/JOINT, plus every ``End Site`` as a joint named ``"<parent>_end"`` (so the head top
  ``Head_end`` exists). A joint's position is its *origin*: in the cgspeed naming "RightKnee" is the knee.
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
- Frame rate: 1 / Frame Time, snapped to an integer rate when the written Frame Time is that rate's
  period to the written precision (".0083333" -> 120 Hz exactly, not 120.0005).
- Units: BVH has no unit field; see `detect_unit_scale`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from ..dataset_manifest import DatasetManifest
from ..errors import MappingError, MocapParseError
from ..geometry import euler_to_matrix
from ..motion import Motion

# Length units a BVH file may be written in, in metres per file unit. "asf" is the CMU/Acclaim unit
# (`:units length 0.45`: 1 unit = 1/0.45 inch), which the cgspeed CMU conversions keep.
UNIT_SCALES_M: Mapping[str, float] = MappingProxyType({
    "m": 1.0,
    "asf": 0.0254 / 0.45,
    "inch": 0.0254,
    "cm": 0.01,
    "mm": 0.001,
})
# Rest-pose leg length (see `rest_leg_length`) of an adult, in metres: 0.7-1.0 m widened by 0.1 m on each
# side. With it the units' ranges in file units are disjoint (m 0.6-1.1, asf 10.6-19.5, inch 23.6-43.3,
# cm 60-110, mm 600-1100), so at most one unit can fit.
PLAUSIBLE_LEG_LENGTH_M: tuple[float, float] = (0.6, 1.1)

_CHANNELS = {
    "xposition": ("position", 0), "yposition": ("position", 1), "zposition": ("position", 2),
    "xrotation": ("rotation", "x"), "yrotation": ("rotation", "y"), "zrotation": ("rotation", "z"),
}  # fmt: skip
_CHANNEL_SPELLING = {k: k[0].upper() + k[1:] for k in _CHANNELS}  # "xposition" -> "Xposition"
_FRAMES_RE = re.compile(r"^\s*frames\s*:\s*(\S+)\s*$", re.IGNORECASE)
_FRAME_TIME_RE = re.compile(r"^\s*frame\s+time\s*:\s*(\S+)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class BvhJoint:
    """One node of the hierarchy.

    Attributes:
        name: as written (End Sites: "<parent>_end").
        parent: index of the parent joint, -1 for the root.
        offset: (3,) OFFSET in file units, in the parent's frame.
        channels: channel names in file order, normalised spelling ("Zrotation", ...); () for End Sites.
        first_column: column of the joint's first channel in a MOTION line.
        line: 1-based line of the ROOT/JOINT/End Site keyword (for messages).
    """

    name: str
    parent: int
    offset: npt.NDArray[np.float64]
    channels: tuple[str, ...]
    first_column: int
    line: int

    @property
    def rotation_axes(self) -> str:
        """Rotation axes in channel order, e.g. "zxy"."""
        return "".join(c[0].lower() for c in self.channels if c.endswith("rotation"))


@dataclass(frozen=True)
class BvhHierarchy:
    """The HIERARCHY section: joints in file order (every parent before its children)."""

    joints: tuple[BvhJoint, ...]
    num_channels: int

    @property
    def joint_names(self) -> tuple[str, ...]:
        return tuple(j.name for j in self.joints)

    @property
    def parents(self) -> tuple[int, ...]:
        return tuple(j.parent for j in self.joints)


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
    lines = _read_lines(path)
    hierarchy, motion_index = _parse_hierarchy(path, lines)
    num_frames, frame_time, data_start = _parse_motion_header(path, lines, motion_index)
    values = _parse_frames(path, lines, data_start, num_frames, hierarchy.num_channels)
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


def read_bvh_hierarchy(path: str | Path) -> BvhHierarchy:
    """Parse only the HIERARCHY section of a BVH file (joints, OFFSETs in file units, channels)."""
    path = Path(path)
    return _parse_hierarchy(path, _read_lines(path))[0]


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


def rest_leg_length(hierarchy: BvhHierarchy) -> float:
    """How far the lowest joint hangs below the root in the rest pose, in file units.

    BVH rest poses stand upright (+Y up) with the root at the pelvis, so this is the leg from hip height
    down to the lowest End Site (toe tip or sole): about the hip-to-ankle length plus the ankle height.
    It needs no joint names, so it works for any naming convention.
    """
    heights = rest_positions(hierarchy)[:, 1]
    return float(-heights.min())


def detect_unit_scale(hierarchy: BvhHierarchy, *, path: str | Path = "") -> float:
    """Metres per file unit, from the rest-pose leg length.

    Rule: among `UNIT_SCALES_M` (m, ASF units, inches, cm, mm), the one unit that makes
    `rest_leg_length` fall in `PLAUSIBLE_LEG_LENGTH_M`. The ranges are disjoint, so the answer is unique.
    cgspeed CMU files measure about 15 units -> ASF units (0.0254/0.45 m).

    Raises:
        MocapParseError: no unit fits (e.g. a rest pose that is not upright, or a child-sized or
            non-human skeleton); the message tells the user to pass `unit_scale_m`.
    """
    leg = rest_leg_length(hierarchy)
    low, high = PLAUSIBLE_LEG_LENGTH_M
    fits = [scale for scale in UNIT_SCALES_M.values() if low <= leg * scale <= high]
    if len(fits) != 1:
        tried = ", ".join(f"{name}: {leg * scale:.3g} m" for name, scale in UNIT_SCALES_M.items())
        raise MocapParseError(
            path,
            f"cannot tell the length unit: the rest pose's leg (root down to its lowest joint) is {leg:.6g} file "
            f"units, which is no adult leg of {low}-{high} m in any known unit ({tried}); "
            "pass unit_scale_m (metres per file unit)",
        )
    return fits[0]


def frame_time_to_fps(frame_time: str) -> float:
    """Frames per second from the Frame Time as written in the file.

    Frame Times are periods rounded or truncated to a few decimals (".0083333"). An integer rate n is
    returned when its period 1/n lies within one unit of the last written decimal and n is within 0.1% of
    1 / Frame Time (so ".0083333" -> 120, but "0.03" stays 33.33 and "0.033367" stays 29.97).
    """
    text = frame_time.strip()
    seconds = float(text)
    fps = 1.0 / seconds
    if "e" in text.lower() or "." not in text:
        return fps  # no fixed number of decimals to compare with
    decimals = len(text.split(".")[1])
    nearest = round(fps)
    if nearest > 0 and abs(1.0 / nearest - seconds) <= 10.0**-decimals and abs(fps - nearest) < 1e-3 * nearest:
        return float(nearest)
    return fps


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


# ---------------------------------------------------------------------------------------------------
# Parsing


def _read_lines(path: Path) -> list[str]:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise MocapParseError(path, f"cannot read file: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # joint names from old tools; every byte decodes
    if not text.strip():
        raise MocapParseError(path, "empty file: expected a BVH HIERARCHY section")
    return text.splitlines()  # LF, CRLF and stray CR alike


def _parse_hierarchy(path: Path, lines: list[str]) -> tuple[BvhHierarchy, int]:
    """Parse HIERARCHY up to MOTION; returns the hierarchy and the 0-based index of the MOTION line."""
    builder = _HierarchyBuilder(path)
    seen_header = False
    for i, line in enumerate(lines):
        tokens = line.split()
        if not tokens:
            continue
        keyword = tokens[0].upper()
        if not seen_header:
            if keyword != "HIERARCHY":
                raise MocapParseError(path, f"expected HIERARCHY, found {line.strip()[:40]!r}", line=i + 1)
            seen_header = True
            continue
        if keyword == "MOTION":
            return builder.finish(i + 1), i
        builder.feed(tokens, i + 1)
    raise MocapParseError(path, "no MOTION section: the file ends inside the HIERARCHY", line=len(lines))


class _HierarchyBuilder:
    """Line-by-line state of the HIERARCHY parser (a stack of open joints)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.names: list[str] = []
        self.parents: list[int] = []
        self.offsets: list[npt.NDArray[np.float64] | None] = []
        self.channels: list[tuple[str, ...]] = []
        self.is_end: list[bool] = []
        self.lines: list[int] = []
        self.stack: list[int] = []  # joints whose "{" is open
        self.pending: int | None = None  # declared joint waiting for its "{"

    def feed(self, tokens: list[str], line: int) -> None:
        keyword = tokens[0].upper()
        if self.pending is not None and keyword != "{":
            raise MocapParseError(self.path, f"expected '{{' after {self.names[self.pending]!r}", line=line)
        if keyword in ("ROOT", "JOINT", "END"):
            opens = len(tokens) > 1 and tokens[-1] == "{"  # "JOINT Hips {" on one line
            self._declare(keyword, tokens[:-1] if opens else tokens, line)
            if opens:
                self.feed(["{"], line)
        elif keyword == "{":
            if self.pending is None:
                raise MocapParseError(self.path, "'{' without a ROOT, JOINT or End Site", line=line)
            self.stack.append(self.pending)
            self.pending = None
        elif keyword == "}":
            if not self.stack:
                raise MocapParseError(self.path, "unbalanced '}'", line=line)
            joint = self.stack.pop()
            if self.offsets[joint] is None:
                raise MocapParseError(self.path, f"{self.names[joint]!r} has no OFFSET", line=line)
        elif keyword == "OFFSET":
            self._offset(tokens, line)
        elif keyword == "CHANNELS":
            self._channels(tokens, line)
        else:
            raise MocapParseError(self.path, f"unexpected {tokens[0]!r} in HIERARCHY", line=line)

    def _declare(self, keyword: str, tokens: list[str], line: int) -> None:
        if keyword == "END":
            if [t.upper() for t in tokens[1:]] != ["SITE"]:
                raise MocapParseError(self.path, f"unexpected {' '.join(tokens)!r} (expected 'End Site')", line=line)
            if not self.stack:
                raise MocapParseError(self.path, "End Site outside any joint", line=line)
            name = f"{self.names[self.stack[-1]]}_end"
        else:
            name = " ".join(tokens[1:])
            if not name:
                raise MocapParseError(self.path, f"{keyword} without a name", line=line)
        if keyword == "ROOT" and self.names:
            raise MocapParseError(self.path, "more than one ROOT (only one skeleton per file is read)", line=line)
        if keyword != "ROOT" and not self.stack:
            raise MocapParseError(self.path, f"{keyword} {name!r} outside the ROOT", line=line)
        if self.stack and self.is_end[self.stack[-1]]:
            raise MocapParseError(self.path, "an End Site cannot have children", line=line)
        if name in self.names:
            raise MocapParseError(self.path, f"duplicate joint name {name!r}", line=line)
        self.names.append(name)
        self.parents.append(self.stack[-1] if self.stack else -1)
        self.offsets.append(None)
        self.channels.append(())
        self.is_end.append(keyword == "END")
        self.lines.append(line)
        self.pending = len(self.names) - 1

    def _current(self, what: str, line: int) -> int:
        if not self.stack:
            raise MocapParseError(self.path, f"{what} outside any joint", line=line)
        return self.stack[-1]

    def _offset(self, tokens: list[str], line: int) -> None:
        joint = self._current("OFFSET", line)
        if len(tokens) != 4:
            raise MocapParseError(self.path, f"OFFSET needs 3 numbers, got {len(tokens) - 1}", line=line)
        try:
            offset = np.array([float(t) for t in tokens[1:]])
        except ValueError:
            raise MocapParseError(self.path, f"OFFSET is not numeric: {' '.join(tokens[1:])!r}", line=line) from None
        if not np.isfinite(offset).all():
            raise MocapParseError(self.path, f"OFFSET is not finite: {' '.join(tokens[1:])!r}", line=line)
        self.offsets[joint] = offset

    def _channels(self, tokens: list[str], line: int) -> None:
        joint = self._current("CHANNELS", line)
        if self.is_end[joint]:
            raise MocapParseError(self.path, "an End Site has no CHANNELS", line=line)
        try:
            count = int(tokens[1])
        except (IndexError, ValueError):
            raise MocapParseError(self.path, "CHANNELS needs a count", line=line) from None
        names = tokens[2:]
        if count != len(names):
            raise MocapParseError(self.path, f"CHANNELS says {count} but lists {len(names)}", line=line)
        unknown = [n for n in names if n.lower() not in _CHANNELS]
        if unknown:
            raise MocapParseError(
                self.path,
                f"unknown channel(s) {', '.join(unknown)} (known: {', '.join(_CHANNEL_SPELLING.values())})",
                line=line,
            )
        if len({n.lower() for n in names}) != len(names):
            raise MocapParseError(self.path, f"repeated channel in {' '.join(names)}", line=line)
        self.channels[joint] = tuple(_CHANNEL_SPELLING[n.lower()] for n in names)

    def finish(self, line: int) -> BvhHierarchy:
        if self.pending is not None or self.stack:
            raise MocapParseError(self.path, "MOTION before the HIERARCHY's braces are closed", line=line)
        if not self.names:
            raise MocapParseError(self.path, "HIERARCHY has no ROOT", line=line)
        joints, column = [], 0
        for j, name in enumerate(self.names):
            offset = self.offsets[j]
            assert offset is not None  # checked when its "}" closed
            joints.append(BvhJoint(name, self.parents[j], offset, self.channels[j], column, self.lines[j]))
            column += len(self.channels[j])
        if column == 0:
            raise MocapParseError(self.path, "HIERARCHY declares no CHANNELS", line=line)
        return BvhHierarchy(tuple(joints), column)


def _parse_motion_header(path: Path, lines: list[str], motion_index: int) -> tuple[int, str, int]:
    """Parse "Frames:" and "Frame Time:"; returns (frames, frame time as written, index of the first frame line)."""
    header = [(i, lines[i]) for i in range(motion_index + 1, len(lines)) if lines[i].strip()][:2]
    if len(header) < 2:
        raise MocapParseError(path, "MOTION needs 'Frames:' and 'Frame Time:' lines", line=len(lines))
    (i_frames, frames_line), (i_time, time_line) = header
    frames_match, time_match = _FRAMES_RE.match(frames_line), _FRAME_TIME_RE.match(time_line)
    if frames_match is None:
        found = frames_line.strip()[:40]
        raise MocapParseError(path, f"expected 'Frames: <count>', found {found!r}", line=i_frames + 1)
    if time_match is None:
        found = time_line.strip()[:40]
        raise MocapParseError(path, f"expected 'Frame Time: <seconds>', found {found!r}", line=i_time + 1)
    try:
        num_frames = int(frames_match.group(1))
    except ValueError:
        raise MocapParseError(path, f"Frames is not an integer: {frames_match.group(1)!r}", line=i_frames + 1) from None
    frame_time = time_match.group(1)
    try:
        seconds = float(frame_time)
    except ValueError:
        seconds = float("nan")
    if num_frames < 0 or not np.isfinite(seconds) or seconds <= 0:
        bad = (i_frames, "Frames must be >= 0") if num_frames < 0 else (i_time, "Frame Time must be > 0 seconds")
        raise MocapParseError(path, bad[1], line=bad[0] + 1)
    return num_frames, frame_time, i_time + 1


def _parse_frames(
    path: Path, lines: list[str], start: int, num_frames: int, num_channels: int
) -> npt.NDArray[np.float64]:
    """(T, C) float64 channel values; every frame line checked for its value count, then one conversion."""
    rows = [(i, line) for i in range(start, len(lines)) if (line := lines[i]).strip()]
    counts = np.fromiter((len(line.split()) for _, line in rows), dtype=np.int64, count=len(rows))
    bad = np.flatnonzero(counts[:num_frames] != num_channels)
    if bad.size:
        i, _ = rows[bad[0]]
        raise MocapParseError(
            path,
            f"frame {bad[0] + 1} has {counts[bad[0]]} values, expected {num_channels} (one per channel)",
            line=i + 1,
        )
    if len(rows) < num_frames:
        raise MocapParseError(
            path,
            f"truncated MOTION: 'Frames: {num_frames}' but only {len(rows)} frame lines "
            f"({len(rows) * num_channels} of {num_frames * num_channels} values)",
            line=len(lines) + 1 if not rows else rows[-1][0] + 2,
        )
    if len(rows) > num_frames:
        raise MocapParseError(
            path, f"'Frames: {num_frames}' but more frame lines follow", line=rows[num_frames][0] + 1
        )
    block = " ".join(line for _, line in rows)
    try:
        values = np.array(block.split(), dtype=np.float64).reshape(num_frames, num_channels)
    except ValueError:
        _raise_bad_number(path, rows)
    finite = np.isfinite(values)
    if not finite.all():
        frame, column = np.argwhere(~finite)[0]
        raise MocapParseError(
            path, f"frame {frame + 1}, value {column + 1} is {float(values[frame, column])}", line=rows[frame][0] + 1
        )
    return values


def _raise_bad_number(path: Path, rows: Iterable[tuple[int, str]]) -> None:
    """Slow path, on error only: find the first token that is not a number."""
    for i, line in rows:
        for token in line.split():
            try:
                float(token)
            except ValueError:
                raise MocapParseError(path, f"not a number: {token[:40]!r}", line=i + 1) from None
    raise AssertionError("a value failed to convert but every token parses")  # pragma: no cover


# ---------------------------------------------------------------------------------------------------
# Kinematics and names


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
            kind, axis = _CHANNELS[channel.lower()]
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
