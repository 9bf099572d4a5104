"""What the numbers of a BVH file mean in SI units: metres per length unit, frames per second.

Why this module exists: BVH has no unit field, and its Frame Time is a rounded period. Both are
inferred here, from the rest pose and from the digits as written, with the rules in the docstrings, so
that read_bvh only applies the results.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from ..errors import MocapParseError
from .bvh_fk import rest_positions
from .bvh_parse import BvhHierarchy

__all__ = ["PLAUSIBLE_LEG_LENGTH_M", "UNIT_SCALES_M", "detect_unit_scale", "frame_time_to_fps", "rest_leg_length"]

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

