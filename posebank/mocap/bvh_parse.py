"""BVH (Biovision Hierarchy) text -> `BvhHierarchy` and the (T, C) channel values of the MOTION section.

Why this module exists: parsing is where every malformed file must be caught and reported with its
file and 1-based line; kinematics (posebank.mocap.bvh_fk) and units (posebank.mocap.bvh_units) can then
trust what they get. Values are returned as written: file units, degrees, no interpretation.

Conventions:
- Joints: every ROOT/JOINT, plus every ``End Site`` as a joint named ``"<parent>_end"`` (so the head top
  ``Head_end`` exists), in file order (every parent before its children).
- Channels: Xposition Yposition Zposition Xrotation Yrotation Zrotation, in any case and order; their
  spelling is normalised ("XROTATION" -> "Xrotation"). Each joint has its own order.
- Text: UTF-8, else Latin-1 (joint names from old tools); LF, CRLF and stray CR alike; tabs or spaces.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from ..errors import MocapParseError
from ._text import read_bytes

__all__ = ["CHANNEL_KINDS", "BvhHierarchy", "BvhJoint", "ParsedBvh", "parse_bvh", "read_bvh_hierarchy"]

# Channel name (lower case) -> ("position", coordinate index) or ("rotation", axis letter).
CHANNEL_KINDS: Mapping[str, tuple[str, int | str]] = MappingProxyType({
    "xposition": ("position", 0), "yposition": ("position", 1), "zposition": ("position", 2),
    "xrotation": ("rotation", "x"), "yrotation": ("rotation", "y"), "zrotation": ("rotation", "z"),
})  # fmt: skip
_CHANNEL_SPELLING = {k: k[0].upper() + k[1:] for k in CHANNEL_KINDS}  # "xposition" -> "Xposition"
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



class ParsedBvh(NamedTuple):
    """A whole BVH file, as written.

    Attributes:
        hierarchy: the HIERARCHY section.
        frame_time: the ``Frame Time:`` value as written (seconds, e.g. ".0083333"; see bvh_units).
        values: (T, C) float64 channel values of the MOTION lines (file units, degrees), C = num_channels.
    """

    hierarchy: BvhHierarchy
    frame_time: str
    values: npt.NDArray[np.float64]


def parse_bvh(path: Path) -> ParsedBvh:
    """Parse a whole BVH file: HIERARCHY, then the MOTION header and every frame line.

    Raises:
        MocapParseError: unreadable, empty or malformed file (names the file and the 1-based line).
    """
    lines = _read_lines(path)
    hierarchy, motion_index = _parse_hierarchy(path, lines)
    num_frames, frame_time, data_start = _parse_motion_header(path, lines, motion_index)
    values = _parse_frames(path, lines, data_start, num_frames, hierarchy.num_channels)
    return ParsedBvh(hierarchy, frame_time, values)


def read_bvh_hierarchy(path: str | Path) -> BvhHierarchy:
    """Parse only the HIERARCHY section of a BVH file (joints, OFFSETs in file units, channels)."""
    path = Path(path)
    return _parse_hierarchy(path, _read_lines(path))[0]


def _read_lines(path: Path) -> list[str]:
    """The file's lines, decoded; MocapParseError when unreadable or blank.

    Unlike the Acclaim readers, a UTF-8 byte-order mark is kept (it then fails the HIERARCHY check), and
    blank means blank after decoding (str.strip also strips Latin-1 NBSP and NEL).
    """
    raw = read_bytes(path)
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
        unknown = [n for n in names if n.lower() not in CHANNEL_KINDS]
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

