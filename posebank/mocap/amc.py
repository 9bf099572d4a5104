"""Acclaim AMC motion files (CMU MoCap, HDM05): text -> `AmcChannels`, the raw values of every frame.

An AMC file holds, per frame, a frame-number line and then one line of values per bone (the root first,
as a rule); which values a line holds is set by the ASF skeleton (`AsfSkeleton.channel_sizes`). This
module reads the values as written, in file units, and does not interpret them: posebank.mocap.acclaim_fk
turns them into joint positions.

Two parsers give the same result: a vectorised one for the regular files that make up the archives, and
a line-by-line one for everything else, which also produces the precise error for a bad file.
Frames: AMC frame numbers count from 1 and are kept as the file gives them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ..errors import MocapParseError
from ._text import parse_number, read_nonempty_bytes
from .asf import AsfSkeleton, FloatArray

__all__ = ["AmcChannels", "read_amc"]


@dataclass(frozen=True, eq=False)  # holds arrays: compare the channels explicitly
class AmcChannels:
    """The values of an AMC file, one array per line name.

    Attributes:
        path: the AMC file.
        frame_numbers: (T,) int64 frame numbers as written (CMU/HDM05 count from 1).
        channels: name -> (T, ndof) float64, columns in the ASF dof order (root: the root ``order``).
            Values as written: angles in `angle_unit`, translations in ASF length units. Present for
            the root and for every bone with at least one dof.
        angle_unit: "deg" or "rad": the AMC's ``:DEGREES``/``:RADIANS``, else the ASF's unit.
    """

    path: str
    frame_numbers: npt.NDArray[np.int64]
    channels: dict[str, FloatArray]
    angle_unit: str

    @property
    def num_frames(self) -> int:
        """T, the number of frames read."""
        return int(self.frame_numbers.shape[0])


@dataclass(frozen=True)
class _AmcHeader:
    body_offset: int  # byte offset of the first data line
    lines: int  # number of header lines (so data line i is file line lines + 1 + i)
    angle_unit: str | None  # from :DEGREES / :RADIANS, None when the file says nothing


def _split_amc_header(data: bytes) -> _AmcHeader:
    """The leading comment (``#!OML:ASF <path>``, whose path is ignored) and ``:keyword`` lines."""
    pos, lines, angle_unit = 0, 0, None
    while pos < len(data):
        end = data.find(b"\n", pos)
        end = len(data) if end < 0 else end
        stripped = data[pos:end].strip()
        if stripped and not stripped.startswith((b"#", b":")):
            break
        keyword = stripped.split()[0].upper() if stripped.startswith(b":") else b""
        if keyword in (b":DEGREES", b":DEG"):
            angle_unit = "deg"
        elif keyword in (b":RADIANS", b":RAD"):
            angle_unit = "rad"
        lines += 1
        pos = end + 1
    return _AmcHeader(min(pos, len(data)), lines, angle_unit)


@dataclass(frozen=True)
class _AmcLayout:
    """Result of parsing an AMC body: frame numbers and one (T, n) array per line name."""

    frame_numbers: npt.NDArray[np.int64]
    channels: dict[str, FloatArray]


def _parse_amc_fast(body: bytes, sizes: Mapping[str, int], required: frozenset[str]) -> _AmcLayout | None:
    """Vectorised parse of a regular AMC body; None whenever anything is unusual.

    Regular means: every frame is a frame-number line followed by the same bone lines in the same
    order, every bone line has exactly its dof count of values, all numbers are finite, frame numbers
    increase, and there are no comments or keywords. Everything is checked on the raw bytes with numpy
    (token boundaries from a whitespace mask, line ids from the newline positions) and the numbers are
    parsed in one C call; on None the caller runs `_parse_amc_general`, which accepts any valid file
    and produces the precise error for a bad one.
    """
    if not body or b"#" in body or b":" in body:
        return None
    buf = np.frombuffer(body, dtype=np.uint8)
    is_space = (buf == 32) | ((buf >= 9) & (buf <= 13))  # what bytes.split() splits on: \t\n\v\f\r and space
    solid = ~is_space
    token_start = np.flatnonzero(solid & np.concatenate(([True], is_space[:-1])))
    token_end = np.flatnonzero(solid & np.concatenate((is_space[1:], [True]))) + 1  # exclusive
    line_of_token = np.searchsorted(np.flatnonzero(buf == 10), token_start)

    # First token of every non-empty line, and the number of tokens on that line.
    first = np.flatnonzero(np.concatenate(([True], line_of_token[1:] != line_of_token[:-1])))
    tokens_per_line = np.diff(np.append(first, token_start.size))
    head_start, head_end = token_start[first], token_end[first]

    # Frame-number lines: a single token made of ASCII digits only (bytes.isdigit, as the general path).
    first_byte = buf[head_start]
    frame_rows = np.flatnonzero((tokens_per_line == 1) & (first_byte >= 48) & (first_byte <= 57))
    if frame_rows.size == 0 or frame_rows[0] != 0:
        return None
    if not all(body[head_start[r] : head_end[r]].isdigit() for r in frame_rows.tolist()):
        return None
    lines_per_frame = np.diff(np.append(frame_rows, first.size))
    k = int(lines_per_frame[0])
    if not (lines_per_frame == k).all():
        return None
    num_frames = frame_rows.size

    names = [body[head_start[i] : head_end[i]].decode("latin-1") for i in range(1, k)]
    if any(n not in sizes for n in names) or len(set(names)) != len(names) or not required <= set(names):
        return None
    ndof = np.array([sizes[n] for n in names], dtype=np.int64)
    expected_tokens = np.concatenate(([1], ndof + 1))
    if not (tokens_per_line.reshape(num_frames, k) == expected_tokens).all():
        return None

    # Every frame must name the same bones in the same slots: compare the name bytes slot by slot.
    starts = head_start.reshape(num_frames, k)[:, 1:]
    ends = head_end.reshape(num_frames, k)[:, 1:]
    for slot, name in enumerate(names):
        code = np.frombuffer(name.encode("latin-1"), dtype=np.uint8)
        if not (ends[:, slot] - starts[:, slot] == code.size).all():
            return None
        if not (buf[starts[:, slot, None] + np.arange(code.size)] == code).all():
            return None

    # Blank the bone names; what is left is frame numbers and values in a fixed stride.
    lengths = (ends - starts).ravel()
    name_bytes = np.repeat(starts.ravel() - (np.cumsum(lengths) - lengths), lengths) + np.arange(lengths.sum())
    numeric = buf.copy()
    numeric[name_bytes] = 32
    try:
        values = np.fromstring(numeric.tobytes().decode("latin-1"), sep=" ")  # strict: raises on junk
    except ValueError:
        return None
    stride = 1 + int(ndof.sum())
    if values.size != num_frames * stride or not np.isfinite(values).all():
        return None
    values = values.reshape(num_frames, stride)
    frame_numbers = values[:, 0].astype(np.int64)
    if num_frames > 1 and not (np.diff(frame_numbers) > 0).all():
        return None

    channels: dict[str, FloatArray] = {}
    column = 1
    for name, n in zip(names, ndof.tolist(), strict=True):
        if n:
            channels[name] = np.ascontiguousarray(values[:, column : column + n])
        column += n
    return _AmcLayout(frame_numbers, channels)


def _parse_amc_general(
    path: Path, data: bytes, header: _AmcHeader, sizes: Mapping[str, int], required: frozenset[str]
) -> _AmcLayout:
    """Line-by-line parse of an AMC body: any bone order, comments; raises the precise error.

    Raises:
        MocapParseError: with the 1-based line (and the frame) of the first problem.
    """
    lines = data[header.body_offset :].split(b"\n")
    last_line = max((i for i, raw in enumerate(lines) if raw.strip()), default=-1)
    frame_numbers: list[int] = []
    frame_lines: list[int] = []
    rows: dict[str, list[list[float]]] = {name: [] for name in sizes}
    seen: set[str] = set()

    def close_frame(truncated: bool) -> None:
        missing = [n for n in sizes if n in required and n not in seen]
        if missing:
            hint = "; the file looks truncated" if truncated else ""
            raise MocapParseError(
                path, f"frame {frame_numbers[-1]} lacks the line(s) of bone(s) {', '.join(missing)}{hint}",
                line=frame_lines[-1], record=f"frame {frame_numbers[-1]}",
            )  # fmt: skip

    for i, raw in enumerate(lines):
        number = header.lines + 1 + i
        tokens = raw.split()
        if not tokens or tokens[0].startswith((b"#", b":")):
            continue
        record = f"frame {frame_numbers[-1]}" if frame_numbers else None
        if len(tokens) == 1 and tokens[0].isdigit():
            if frame_numbers:
                close_frame(truncated=False)
                if int(tokens[0]) <= frame_numbers[-1]:
                    raise MocapParseError(
                        path, f"frame number {int(tokens[0])} does not follow {frame_numbers[-1]}", line=number
                    )
            frame_numbers.append(int(tokens[0]))
            frame_lines.append(number)
            seen = set()
            continue
        name = tokens[0].decode("latin-1")
        if not frame_numbers:
            raise MocapParseError(path, f"line {name!r} comes before the first frame number", line=number)
        if name not in sizes:
            raise MocapParseError(
                path, f"unknown bone {name!r}: the ASF does not define it", line=number, record=record
            )
        if name in seen:
            raise MocapParseError(path, f"bone {name!r} appears twice in one frame", line=number, record=record)
        values = tokens[1:]
        if len(values) != sizes[name]:
            hint = " (file truncated?)" if i == last_line else ""
            message = f"bone {name!r} needs {sizes[name]} value(s), found {len(values)}{hint}"
            raise MocapParseError(path, message, line=number, record=record)
        rows[name].append([parse_number(path, v, number, f"bone {name!r}") for v in values])
        seen.add(name)
    if not frame_numbers:
        raise MocapParseError(path, "no frames (empty or header-only AMC file)")
    close_frame(truncated=True)

    num_frames = len(frame_numbers)
    channels: dict[str, FloatArray] = {}
    for name, n in sizes.items():
        if n and rows[name]:
            if len(rows[name]) != num_frames:  # an optional (dof-less) bone cannot get here with values
                raise MocapParseError(path, f"bone {name!r} is missing from some frames")
            channels[name] = np.asarray(rows[name], dtype=np.float64).reshape(num_frames, n)
    return _AmcLayout(np.asarray(frame_numbers, dtype=np.int64), channels)


def read_amc(path: str | Path, skeleton: AsfSkeleton) -> AmcChannels:
    """Parse an AMC motion file for `skeleton`.

    Every frame must hold one line for the root and for each bone with dofs (bones without dofs may be
    absent), each with exactly that many numbers. Regular files take a vectorised path; anything
    else (comments between frames, bones in varying order, or an error) is read line by line.

    Returns:
        AmcChannels with (T,) frame numbers and name -> (T, ndof) raw values.

    Raises:
        MocapParseError: empty file, no frames, a truncated last frame, a frame missing a bone line,
            an unknown bone, a wrong number of values, a non-numeric or non-finite value, frame
            numbers that do not increase. The message names the file, the line and the frame.
    """
    path = Path(path)
    data = read_nonempty_bytes(path)
    header = _split_amc_header(data)
    sizes = skeleton.channel_sizes
    required = frozenset(name for name, n in sizes.items() if n > 0)
    layout = _parse_amc_fast(data[header.body_offset :], sizes, required)
    if layout is None:
        layout = _parse_amc_general(path, data, header, sizes, required)
    return AmcChannels(
        path=str(path),
        frame_numbers=layout.frame_numbers,
        channels=layout.channels,
        angle_unit=header.angle_unit or skeleton.angle_unit,
    )

