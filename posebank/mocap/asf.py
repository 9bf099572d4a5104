"""Acclaim ASF skeleton files (CMU MoCap, HDM05): text -> `AsfSkeleton`.

An ASF file describes a skeleton: each bone's direction and length in the rest pose, its local axis
frame and its degrees of freedom, and the hierarchy joining the bones to the root. This module parses
that text and nothing else; AMC values are read by posebank.mocap.amc and turned into joint positions
by posebank.mocap.acclaim_fk.

Conventions (standard Acclaim, as the CMU viewer and most readers implement them):
- Lengths are in ASF length units: ``:units length 0.45`` means one unit is 1/0.45 inch, so
  metres = value / length_scale * 0.0254. `AsfBone.length_m` and `AsfSkeleton.root_position_m` are metres.
- Angles are degrees unless the ASF says ``angle rad``; `axis_rad` and `root_orientation_rad` are radians.
- A rotation given by an order string ("XYZ", or the dof list "rx ry rz") applies the first listed
  axis first: "XYZ" with angles (a, b, c) is R = Rz(c) @ Ry(b) @ Rx(a).

World frame: the file's own, right-handed with +Y up.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ..errors import MocapParseError
from ..geometry import euler_to_matrix
from ._text import parse_number, read_nonempty_bytes

__all__ = ["INCH_M", "ROOT", "AsfBone", "AsfSkeleton", "read_asf"]

FloatArray = npt.NDArray[np.float64]

INCH_M = 0.0254
ROOT = "root"
_BONE_DOFS = frozenset({"rx", "ry", "rz", "tx", "ty", "tz", "l"})
_ROOT_DOFS = frozenset({"tx", "ty", "tz", "rx", "ry", "rz"})


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



def _rotation(angles_rad: FloatArray, axes: str) -> FloatArray:
    """Rotation matrices (..., 3, 3) from angles (..., n) about `axes` (n letters), first listed applied first.

    "XYZ" with (a, b, c) gives Rz(c) @ Ry(b) @ Rx(a); euler_to_matrix composes left to right, hence the reversal.
    """
    return euler_to_matrix(np.asarray(angles_rad, dtype=np.float64)[..., ::-1], axes[::-1].lower())


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
                length_scale = parse_number(path, value, line.number, "units length")
                if length_scale <= 0:
                    raise MocapParseError(path, f"units length must be positive, got {value}", line=line.number)
            elif key == "mass":
                mass = parse_number(path, value, line.number, "units mass")
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
    x, y, z = (parse_number(path, v, line.number, what) for v in values)
    return (x, y, z)


def _parse_dof_list(path: Path, line: _Line, allowed: frozenset[str], rule: str) -> tuple[str, ...]:
    """The lower-cased names after the line's keyword; MocapParseError "<rule>, got ..." unless distinct and allowed."""
    names = tuple(t.lower() for t in line.tokens[1:])
    if any(n not in allowed for n in names) or len(set(names)) != len(names):
        raise MocapParseError(path, f"{rule}, got {' '.join(line.tokens[1:])}", line=line.number)
    return names


def _angles_rad(angles: Sequence[float], angle_unit: str) -> tuple[float, ...]:
    """ASF angles in `angle_unit` ("deg" or "rad") as radians."""
    angle = math.radians if angle_unit == "deg" else float
    return tuple(angle(a) for a in angles)


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
            order = _parse_dof_list(path, line, _ROOT_DOFS, "root order must list distinct TX TY TZ RX RY RZ")
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
            out.append(parse_number(path, tok, line, "limits", allow_inf=True))
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
            fields["id"] = int(parse_number(path, line.tokens[1] if len(line.tokens) > 1 else "", line.number, "id"))
        elif key == "name":
            if len(line.tokens) != 2:
                raise MocapParseError(path, "bone name must be one word", line=line.number)
            fields["name"] = line.tokens[1]
        elif key == "direction":
            fields["direction"] = (_parse_vector(path, line, 1, "bone direction"), line.number)
        elif key == "length":
            if len(line.tokens) < 2:
                raise MocapParseError(path, "bone length needs a number", line=line.number)
            length = parse_number(path, line.tokens[1], line.number, "bone length")
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
            fields["dof"] = _parse_dof_list(path, line, _BONE_DOFS, "dof must list distinct rx ry rz tx ty tz l")
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
    return AsfBone(
        name=str(fields["name"]),
        id=fields.get("id"),  # type: ignore[arg-type]
        direction=tuple(c / norm for c in direction),  # type: ignore[arg-type]
        length_m=float(fields["length"]) * metres_per_unit,  # type: ignore[arg-type]
        axis_rad=_angles_rad(axis_values, angle_unit),  # type: ignore[arg-type]
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
    sections = _asf_sections(read_nonempty_bytes(path))
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
    return AsfSkeleton(
        path=str(path),
        name=" ".join(name_section.header.tokens[1:]) if name_section else "",
        length_scale=length_scale,
        angle_unit=angle_unit,
        mass=mass,
        root_order=root.order,
        root_axis=root.axis,
        root_position_m=tuple(p * metres_per_unit for p in root.position),  # type: ignore[arg-type]
        root_orientation_rad=_angles_rad(root.orientation, angle_unit),  # type: ignore[arg-type]
        bones=tuple(bones),
        hierarchy=tuple(pairs),
    )

