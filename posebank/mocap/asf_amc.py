"""Acclaim ASF/AMC reader (CMU MoCap, HDM05) with vectorised forward kinematics.

An ASF file describes a skeleton (bone directions and lengths in the rest pose, each bone's local
axis frame and its degrees of freedom); an AMC file holds, per frame, one line of values per bone.

Conventions (standard Acclaim, as the CMU viewer and most readers implement them):
- Lengths and root translations are in ASF length units: ``:units length 0.45`` means one unit is
  1/0.45 inch, so metres = value / length_scale * 0.0254.
- Angles are degrees unless the ASF says ``angle rad`` (or the AMC says ``:RADIANS``).
- A rotation given by an order string ("XYZ", or the dof list "rx ry rz") applies the first listed
  axis first: "XYZ" with angles (a, b, c) is R = Rz(c) @ Ry(b) @ Rx(a).
- Bone b with axis rotation C and AMC rotation M: R_global(b) = R_global(parent) @ C @ M @ C^T, and the
  bone's end is end(parent) + length * R_global(b) @ direction (direction is in world coordinates of
  the rest pose, so zero AMC values reproduce the ASF rest pose).
- The root joint is the root translation (AMC TX TY TZ); its rotation is built like a bone's with
  C from the root ``orientation`` and ``axis``.

World frame: the files' own, right-handed with +Y up. Joint positions are metres.
Frames: AMC frame numbers count from 1 and are kept as the file gives them.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ..errors import MocapParseError
from ..geometry import euler_to_matrix
from ..motion import Motion

__all__ = [
    "AmcChannels",
    "AsfBone",
    "AsfSkeleton",
    "forward_kinematics",
    "read_amc",
    "read_asf",
    "read_motion",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

INCH_M = 0.0254
ROOT = "root"
_BONE_DOFS = frozenset({"rx", "ry", "rz", "tx", "ty", "tz", "l"})
_ROOT_DOFS = frozenset({"tx", "ty", "tz", "rx", "ry", "rz"})

# A decimal number as Acclaim writers print it ("-6.59717e-015", "20", ".5"). Python's float() alone
# would also take "1_0" or "nan"; numbers are checked against this first so both parsing paths agree.
_NUMBER = re.compile(rb"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INFINITY = re.compile(rb"[+-]?inf(?:inity)?", re.IGNORECASE)

# ----------------------------------------------------------------------------------------------
# Data classes
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AsfBone:
    """One ASF bone.

    Attributes:
        name: bone name ("lfemur", ...).
        id: the ASF ``id`` (None when absent).
        direction: (3,) unit vector, the bone's direction in the world frame of the rest pose.
        length_m: bone length in metres.
        axis_rad: (3,) angles (radians) of the bone's local axis frame, paired with `axis_order`'s letters.
        axis_order: e.g. "XYZ": the first letter's rotation is applied first.
        dof: the AMC columns of this bone, lower case, in file order ("rx", "ry", "rz", "tx", "ty",
            "tz", "l"); empty for a bone the AMC does not move.
        limits: one (min, max) per dof, as written (ASF angle unit / length unit); may hold inf.
        parent: the parent's name ("root" or a bone name).
    """

    name: str
    id: int | None
    direction: tuple[float, float, float]
    length_m: float
    axis_rad: tuple[float, float, float]
    axis_order: str
    dof: tuple[str, ...]
    limits: tuple[tuple[float, float], ...]
    parent: str


@dataclass(frozen=True)
class AsfSkeleton:
    """A parsed ASF file.

    Attributes:
        path: the ASF file.
        name: the ``:name`` value ("VICON", or an edited title such as "Michael Jackson").
        length_scale: the ``:units length`` value; one ASF length unit is 1/length_scale inch.
        angle_unit: "deg" or "rad" (``:units angle``).
        mass: the ``:units mass`` value (unused).
        root_order: the AMC columns of the root, lower case, e.g. ("tx", "ty", "tz", "rx", "ry", "rz").
        root_axis: rotation order of the root ``orientation``, e.g. "XYZ".
        root_position_m: (3,) ASF root ``position`` in metres. Kept for provenance only: the AMC root
            translation is absolute (as in the CMU viewer), and every known file has 0 0 0 here.
        root_orientation_rad: (3,) root ``orientation`` in radians, paired with `root_axis`'s letters.
        bones: the bones in ASF order.
        hierarchy: (parent, children) pairs as the ``:hierarchy`` section lists them.
    """

    path: str
    name: str
    length_scale: float
    angle_unit: str
    mass: float
    root_order: tuple[str, ...]
    root_axis: str
    root_position_m: tuple[float, float, float]
    root_orientation_rad: tuple[float, float, float]
    bones: tuple[AsfBone, ...]
    hierarchy: tuple[tuple[str, tuple[str, ...]], ...]

    @property
    def metres_per_unit(self) -> float:
        """Metres per ASF length unit (0.0254 / length_scale)."""
        return INCH_M / self.length_scale

    @property
    def joint_names(self) -> tuple[str, ...]:
        """(J,) = ("root", bone names in ASF order); a bone's joint is the bone's end."""
        return (ROOT,) + tuple(b.name for b in self.bones)

    @cached_property
    def parents(self) -> tuple[int, ...]:
        """(J,) parent joint index of each joint of `joint_names`, -1 for the root."""
        index = {name: i for i, name in enumerate(self.joint_names)}
        return (-1,) + tuple(index[b.parent] for b in self.bones)

    @cached_property
    def channel_sizes(self) -> dict[str, int]:
        """Number of AMC values per line name: the root and every bone (0 for bones without dof)."""
        sizes = {ROOT: len(self.root_order)}
        sizes.update((b.name, len(b.dof)) for b in self.bones)
        return sizes

    @cached_property
    def fk_order(self) -> tuple[int, ...]:
        """Indices into `bones` such that every bone comes after its parent."""
        return _topological_order(self.bones)

    @cached_property
    def axis_matrices(self) -> FloatArray:
        """(J, 3, 3) read-only axis rotations C of the joints (root: its orientation), computed once."""
        angles = np.array([self.root_orientation_rad] + [b.axis_rad for b in self.bones])
        orders = [self.root_axis] + [b.axis_order for b in self.bones]
        matrices = np.empty((len(orders), 3, 3))
        for order in set(orders):  # one vectorised call per distinct order (CMU: all "XYZ")
            rows = [j for j, o in enumerate(orders) if o == order]
            matrices[rows] = _rotation(angles[rows], order)
        matrices.flags.writeable = False
        return matrices

    def bone(self, name: str) -> AsfBone:
        """The bone called `name`; KeyError listing the known bones when absent."""
        for b in self.bones:
            if b.name == name:
                return b
        raise KeyError(f"bone {name!r} not in {self.path} ({', '.join(b.name for b in self.bones)})")


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
        return int(self.frame_numbers.shape[0])


# ----------------------------------------------------------------------------------------------
# Small shared helpers
# ----------------------------------------------------------------------------------------------


def _read_bytes(path: Path) -> bytes:
    """The file's bytes; MocapParseError when it cannot be read or is empty."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MocapParseError(path, f"cannot read file: {exc.strerror or exc}") from None
    if data.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark written by some editors; line 1 stays line 1
        data = data[3:]
    if not data or data.isspace():  # isspace stops at the first other byte: no copy of a big file
        raise MocapParseError(path, "empty file")
    return data


def _parse_number(path: Path, token: bytes | str, line: int, what: str, *, allow_inf: bool = False) -> float:
    """One finite number (or ±inf when `allow_inf`); MocapParseError naming the line otherwise."""
    raw = token.encode("latin-1") if isinstance(token, str) else token
    text = raw.decode("latin-1")
    if _NUMBER.fullmatch(raw):
        value = float(raw)
        if math.isfinite(value):
            return value
        raise MocapParseError(path, f"non-finite value {text!r} for {what}", line=line)
    if allow_inf and _INFINITY.fullmatch(raw):
        return float(raw)
    kind = "non-finite" if text.lower().lstrip("+-") in ("nan", "inf", "infinity") else "non-numeric"
    raise MocapParseError(path, f"{kind} value {text!r} for {what}", line=line)


def _rotation(angles_rad: FloatArray, axes: str) -> FloatArray:
    """Rotation matrices (..., 3, 3) from angles (..., n) about `axes` (n letters), first listed applied first.

    "XYZ" with (a, b, c) gives Rz(c) @ Ry(b) @ Rx(a); euler_to_matrix composes left to right, hence the reversal.
    """
    return euler_to_matrix(np.asarray(angles_rad, dtype=np.float64)[..., ::-1], axes[::-1].lower())


def _to_radians(values: FloatArray, angle_unit: str) -> FloatArray:
    return np.deg2rad(values) if angle_unit == "deg" else np.asarray(values, dtype=np.float64)


def _topological_order(bones: Sequence[AsfBone]) -> tuple[int, ...]:
    """Bone indices, parents first (breadth-first from the root); ValueError on a bone not reachable."""
    children: dict[str, list[int]] = {}
    for i, b in enumerate(bones):
        children.setdefault(b.parent, []).append(i)
    order: list[int] = []
    frontier = [ROOT]
    while frontier:
        nxt: list[str] = []
        for name in frontier:
            for i in children.get(name, []):
                order.append(i)
                nxt.append(bones[i].name)
        frontier = nxt
    if len(order) != len(bones):
        lost = sorted(set(range(len(bones))) - set(order))
        raise ValueError(", ".join(bones[i].name for i in lost))
    return tuple(order)


# ----------------------------------------------------------------------------------------------
# ASF
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Line:
    """One non-empty, comment-stripped line of a text file: 1-based number and its tokens."""

    number: int
    tokens: tuple[str, ...]


@dataclass(frozen=True)
class _Section:
    """A ``:keyword`` section: its header line (keyword + inline tokens) and the lines up to the next one."""

    keyword: str
    header: _Line
    body: tuple[_Line, ...]


def _asf_sections(data: bytes) -> list[_Section]:
    """Split an ASF file into sections. Lines before the first keyword (comments) are dropped.

    Lines split on LF (CR counts as whitespace, so CRLF and LF mix freely); text after '#' is a comment;
    bytes are Latin-1 so that no byte can fail to decode.
    """
    sections: list[_Section] = []
    current: tuple[str, _Line, list[_Line]] | None = None
    for number, raw in enumerate(data.split(b"\n"), start=1):
        hash_at = raw.find(b"#")
        if hash_at >= 0:
            raw = raw[:hash_at]
        tokens = tuple(t.decode("latin-1") for t in raw.split())
        if not tokens:
            continue
        line = _Line(number, tokens)
        if tokens[0].startswith(":"):
            if current is not None:
                sections.append(_Section(current[0], current[1], tuple(current[2])))
            current = (tokens[0][1:].lower(), line, [])
        elif current is not None:
            current[2].append(line)
    if current is not None:
        sections.append(_Section(current[0], current[1], tuple(current[2])))
    return sections


def _parse_units(path: Path, section: _Section | None) -> tuple[float, str, float]:
    """(length_scale, angle_unit, mass) from ``:units`` (inline or one pair a line); Acclaim defaults 1, deg, 1."""
    length_scale, angle_unit, mass = 1.0, "deg", 1.0
    if section is None:
        return length_scale, angle_unit, mass
    lines = [_Line(section.header.number, section.header.tokens[1:])] + list(section.body)
    for line in lines:
        toks = line.tokens
        for key, value in zip(toks[0::2], toks[1::2], strict=False):
            key = key.lower()
            if key == "length":
                length_scale = _parse_number(path, value, line.number, "units length")
                if length_scale <= 0:
                    raise MocapParseError(path, f"units length must be positive, got {value}", line=line.number)
            elif key == "mass":
                mass = _parse_number(path, value, line.number, "units mass")
            elif key == "angle":
                unit = value.lower()
                if unit.startswith("deg"):
                    angle_unit = "deg"
                elif unit.startswith("rad"):
                    angle_unit = "rad"
                else:
                    raise MocapParseError(path, f"unknown angle unit {value!r} (deg or rad)", line=line.number)
    return length_scale, angle_unit, mass


def _parse_axis_order(path: Path, token: str, line: int) -> str:
    order = token.upper()
    if sorted(order) != ["X", "Y", "Z"]:
        raise MocapParseError(path, f"axis order must be a permutation of XYZ, got {token!r}", line=line)
    return order


def _parse_vector(path: Path, line: _Line, start: int, what: str) -> tuple[float, float, float]:
    values = line.tokens[start : start + 3]
    if len(values) != 3:
        raise MocapParseError(path, f"{what} needs 3 numbers, got {len(values)}", line=line.number)
    x, y, z = (_parse_number(path, v, line.number, what) for v in values)
    return (x, y, z)


@dataclass(frozen=True)
class _Root:
    order: tuple[str, ...]
    axis: str
    position: tuple[float, float, float]
    orientation: tuple[float, float, float]


def _parse_root(path: Path, section: _Section | None) -> _Root:
    """The ``:root`` section. Defaults: order TX TY TZ RX RY RZ, axis XYZ, position and orientation 0."""
    order: tuple[str, ...] = ("tx", "ty", "tz", "rx", "ry", "rz")
    axis, position, orientation = "XYZ", (0.0, 0.0, 0.0), (0.0, 0.0, 0.0)
    for line in section.body if section is not None else ():
        key = line.tokens[0].lower()
        if key == "order":
            order = tuple(t.lower() for t in line.tokens[1:])
            bad = [t for t in order if t not in _ROOT_DOFS]
            if bad or len(set(order)) != len(order):
                raise MocapParseError(
                    path, f"root order must list distinct TX TY TZ RX RY RZ, got {' '.join(line.tokens[1:])}",
                    line=line.number,
                )  # fmt: skip
        elif key == "axis":
            if len(line.tokens) != 2:
                raise MocapParseError(path, "root axis needs one order such as XYZ", line=line.number)
            axis = _parse_axis_order(path, line.tokens[1], line.number)
        elif key == "position":
            position = _parse_vector(path, line, 1, "root position")
        elif key == "orientation":
            orientation = _parse_vector(path, line, 1, "root orientation")
    return _Root(order, axis, position, orientation)


def _parse_limits(path: Path, tokens: Sequence[str], line: int) -> list[float]:
    """Numbers of a limits line such as "(-160.0 20.0)" or "(-inf inf)"."""
    out = []
    for tok in tokens:
        tok = tok.strip("()")
        if tok:
            out.append(_parse_number(path, tok, line, "limits", allow_inf=True))
    return out


def _parse_bone_block(
    path: Path, lines: Sequence[_Line], begin_line: int, metres_per_unit: float, angle_unit: str
) -> AsfBone:
    """One ``begin ... end`` block of ``:bonedata`` (parent filled in later from the hierarchy)."""
    fields: dict[str, object] = {}
    limits: list[float] = []
    in_limits = False
    for line in lines:
        key = line.tokens[0].lower()
        if in_limits and key.startswith("("):
            limits += _parse_limits(path, line.tokens, line.number)
            continue
        in_limits = False
        if key == "id":
            fields["id"] = int(_parse_number(path, line.tokens[1] if len(line.tokens) > 1 else "", line.number, "id"))
        elif key == "name":
            if len(line.tokens) != 2:
                raise MocapParseError(path, "bone name must be one word", line=line.number)
            fields["name"] = line.tokens[1]
        elif key == "direction":
            fields["direction"] = (_parse_vector(path, line, 1, "bone direction"), line.number)
        elif key == "length":
            if len(line.tokens) < 2:
                raise MocapParseError(path, "bone length needs a number", line=line.number)
            length = _parse_number(path, line.tokens[1], line.number, "bone length")
            if length < 0:
                raise MocapParseError(path, f"negative bone length {length}", line=line.number)
            fields["length"] = length
        elif key == "axis":
            if len(line.tokens) != 5:
                raise MocapParseError(path, "bone axis needs 3 angles and an order such as XYZ", line=line.number)
            fields["axis"] = (
                _parse_vector(path, line, 1, "bone axis"),
                _parse_axis_order(path, line.tokens[4], line.number),
            )
        elif key == "dof":
            dof = tuple(t.lower() for t in line.tokens[1:])
            bad = [t for t in dof if t not in _BONE_DOFS]
            if bad or len(set(dof)) != len(dof):
                raise MocapParseError(
                    path, f"dof must list distinct rx ry rz tx ty tz l, got {' '.join(line.tokens[1:])}",
                    line=line.number,
                )  # fmt: skip
            fields["dof"] = dof
        elif key == "limits":
            limits += _parse_limits(path, line.tokens[1:], line.number)
            in_limits = True
        # Other keys (bodymass, cofmass, ...) do not affect positions.
    for required in ("name", "direction", "length", "axis"):
        if required not in fields:
            raise MocapParseError(path, f"bone block lacks {required!r}", line=begin_line)
    direction, direction_line = fields["direction"]  # type: ignore[misc]
    norm = math.sqrt(sum(c * c for c in direction))
    if norm == 0.0:
        raise MocapParseError(path, f"bone {fields['name']!r} has a zero direction", line=direction_line)
    axis_values, axis_order = fields["axis"]  # type: ignore[misc]
    angle = math.radians if angle_unit == "deg" else float
    return AsfBone(
        name=str(fields["name"]),
        id=fields.get("id"),  # type: ignore[arg-type]
        direction=tuple(c / norm for c in direction),  # type: ignore[arg-type]
        length_m=float(fields["length"]) * metres_per_unit,  # type: ignore[arg-type]
        axis_rad=tuple(angle(a) for a in axis_values),  # type: ignore[arg-type]
        axis_order=axis_order,
        dof=fields.get("dof", ()),  # type: ignore[arg-type]
        limits=tuple(zip(limits[0::2], limits[1::2], strict=False)),
        parent="",
    )


def _parse_bonedata(path: Path, section: _Section, metres_per_unit: float, angle_unit: str) -> list[AsfBone]:
    bones: list[AsfBone] = []
    block: list[_Line] | None = None
    begin_line = section.header.number
    for line in section.body:
        key = line.tokens[0].lower()
        if key == "begin":
            if block is not None:
                raise MocapParseError(path, "'begin' inside a bone block (missing 'end')", line=line.number)
            block, begin_line = [], line.number
        elif key == "end":
            if block is None:
                raise MocapParseError(path, "'end' without 'begin'", line=line.number)
            bones.append(_parse_bone_block(path, block, begin_line, metres_per_unit, angle_unit))
            block = None
        elif block is None:
            raise MocapParseError(path, f"{line.tokens[0]!r} outside a bone block", line=line.number)
        else:
            block.append(line)
    if block is not None:
        raise MocapParseError(path, "bone block without 'end' (file truncated?)", line=begin_line)
    if not bones:
        raise MocapParseError(path, ":bonedata defines no bone", line=section.header.number)
    seen: set[str] = set()
    for b in bones:
        if b.name in seen or b.name == ROOT:
            raise MocapParseError(path, f"bone name {b.name!r} defined twice", line=section.header.number)
        seen.add(b.name)
    return bones


def _parse_hierarchy(
    path: Path, section: _Section, bone_names: set[str]
) -> tuple[list[tuple[str, tuple[str, ...]]], dict[str, str]]:
    """(parent, children) pairs and child -> parent, checking every name against ``:bonedata``."""
    pairs: list[tuple[str, tuple[str, ...]]] = []
    parent_of: dict[str, str] = {}
    for line in section.body:
        if line.tokens[0].lower() in ("begin", "end"):
            continue
        parent, children = line.tokens[0], line.tokens[1:]
        for name in (parent, *children):
            if name != ROOT and name not in bone_names:
                raise MocapParseError(path, f"hierarchy names undefined bone {name!r}", line=line.number)
        for child in children:
            if child == ROOT:
                raise MocapParseError(path, "the root cannot be a child", line=line.number)
            if child in parent_of:
                raise MocapParseError(
                    path, f"bone {child!r} has two parents ({parent_of[child]!r} and {parent!r})", line=line.number
                )
            parent_of[child] = parent
        pairs.append((parent, tuple(children)))
    return pairs, parent_of


def read_asf(path: str | Path) -> AsfSkeleton:
    """Parse an Acclaim ASF skeleton file.

    Unknown ``:keyword`` sections (``:name``, ``:namespace``, ``:documentation``, ``:skin``, ...) are skipped.

    Raises:
        MocapParseError: unreadable or empty file, no ``:bonedata`` or ``:hierarchy``, a malformed
            value, or a hierarchy naming an undefined bone / leaving a bone unattached to the root.
    """
    path = Path(path)
    sections = _asf_sections(_read_bytes(path))
    by_keyword: dict[str, _Section] = {}
    for s in sections:
        by_keyword.setdefault(s.keyword, s)  # the first occurrence wins
    if "bonedata" not in by_keyword:
        raise MocapParseError(path, "no :bonedata section (not an ASF file, or truncated)")
    if "hierarchy" not in by_keyword:
        raise MocapParseError(path, "no :hierarchy section (file truncated?)")

    length_scale, angle_unit, mass = _parse_units(path, by_keyword.get("units"))
    metres_per_unit = INCH_M / length_scale
    root = _parse_root(path, by_keyword.get("root"))
    bones = _parse_bonedata(path, by_keyword["bonedata"], metres_per_unit, angle_unit)
    pairs, parent_of = _parse_hierarchy(path, by_keyword["hierarchy"], {b.name for b in bones})

    hierarchy_line = by_keyword["hierarchy"].header.number
    orphans = [b.name for b in bones if b.name not in parent_of]
    if orphans:
        raise MocapParseError(path, f"hierarchy gives no parent to bone(s) {', '.join(orphans)}", line=hierarchy_line)
    bones = [replace(b, parent=parent_of[b.name]) for b in bones]
    try:
        _topological_order(bones)
    except ValueError as exc:
        raise MocapParseError(
            path, f"bone(s) {exc} are not connected to the root (cycle in the hierarchy)", line=hierarchy_line,
        ) from None  # fmt: skip

    name_section = by_keyword.get("name")
    angle = math.radians if angle_unit == "deg" else float
    return AsfSkeleton(
        path=str(path),
        name=" ".join(name_section.header.tokens[1:]) if name_section else "",
        length_scale=length_scale,
        angle_unit=angle_unit,
        mass=mass,
        root_order=root.order,
        root_axis=root.axis,
        root_position_m=tuple(p * metres_per_unit for p in root.position),  # type: ignore[arg-type]
        root_orientation_rad=tuple(angle(a) for a in root.orientation),  # type: ignore[arg-type]
        bones=tuple(bones),
        hierarchy=tuple(pairs),
    )


# ----------------------------------------------------------------------------------------------
# AMC
# ----------------------------------------------------------------------------------------------


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
        rows[name].append([_parse_number(path, v, number, f"bone {name!r}") for v in values])
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
    data = _read_bytes(path)
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


# ----------------------------------------------------------------------------------------------
# Forward kinematics
# ----------------------------------------------------------------------------------------------


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


# ----------------------------------------------------------------------------------------------
# Motion
# ----------------------------------------------------------------------------------------------


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
