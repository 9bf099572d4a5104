"""Bone lengths of 3D poses and the checks that catch unit and joint-mapping errors.

A MoCap subject has one skeleton: its limb lengths are the same in every frame (views rotate the
pose and do not change them). So per subject a rigid bone (a limb segment, the hip width) must have
a near-zero spread, and a length a human can have. A length 2.54x or 0.0254x too large points at
inches or millimetres read as metres; a spread, or a left side much longer than the right, at a
mapping that took the wrong joint. Bones that join the torso to the shoulders or the head bend with
the spine and the neck: their spread is reported, not flagged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..skeleton import Skeleton

# Plausible adult (and older child) lengths in metres, by the bone's joint names with sides removed,
# and whether the bone is rigid. Wide on purpose: they catch unit and mapping errors, not body types.
_BONE_RULES: dict[tuple[str, str], tuple[float, float, bool]] = {
    ("ankle", "knee"): (0.30, 0.60, True),  # shin
    ("knee", "hip"): (0.30, 0.60, True),  # thigh (femur)
    ("wrist", "elbow"): (0.15, 0.40, True),  # forearm
    ("elbow", "shoulder"): (0.20, 0.45, True),  # upper arm
    ("hip", "hip"): (0.08, 0.40, True),  # hip width
    ("shoulder", "shoulder"): (0.20, 0.60, False),  # the clavicles move
    ("shoulder", "hip"): (0.30, 0.80, False),  # torso side: the spine bends
    ("head", "shoulder"): (0.10, 0.50, False),  # the neck moves
    ("pelvis", "hip"): (0.04, 0.25, True),
    ("spine", "pelvis"): (0.02, 0.45, False),
    ("thorax", "spine"): (0.02, 0.45, False),
    ("neck", "thorax"): (0.02, 0.35, False),
    ("head", "neck"): (0.02, 0.35, False),
    ("shoulder", "thorax"): (0.05, 0.35, False),
}
# |left - right| / mean above this is flagged for rigid paired bones: real MoCap skeletons reach ~12%
# (HDM05 bk forearms); a joint mapped to the wrong source joint gives far more.
ASYMMETRY_LIMIT = 0.20


def _unsided(name: str) -> str:
    return name.removeprefix("left_").removeprefix("right_")


@dataclass(frozen=True)
class BoneTable:
    """The bones checked for one skeleton.

    Attributes:
        names: "child-parent" per bone (the skeleton's own joint names).
        pairs: (B, 2) joint indices (child, parent).
        low_m, high_m: (B,) plausible length range in metres (NaN: not checked).
        rigid: (B,) whether the bone's length must not vary within a subject.
        mirror: (B,) index of the mirrored bone (left <-> right), or -1 for central bones.
    """

    names: tuple[str, ...]
    pairs: npt.NDArray[np.int64]
    low_m: npt.NDArray[np.float64]
    high_m: npt.NDArray[np.float64]
    rigid: npt.NDArray[np.bool_]
    mirror: npt.NDArray[np.int64]


def bone_table(skeleton: Skeleton) -> BoneTable:
    """The skeleton's bones (Skeleton.bones) with their plausible ranges and rigidity."""
    names, low, high, rigid = [], [], [], []
    for c, p in skeleton.bones:
        cn, pn = skeleton.joint_names[c], skeleton.joint_names[p]
        names.append(f"{cn}-{pn}")
        rule = _BONE_RULES.get((_unsided(cn), _unsided(pn))) or _BONE_RULES.get((_unsided(pn), _unsided(cn)))
        lo, hi, rg = rule if rule else (np.nan, np.nan, False)
        low.append(lo)
        high.append(hi)
        rigid.append(rg)
    flip = skeleton.flip_permutation
    index = {(c, p): i for i, (c, p) in enumerate(skeleton.bones)}
    mirror = []
    for i, (c, p) in enumerate(skeleton.bones):
        m = index.get((flip[c], flip[p]), index.get((flip[p], flip[c]), -1))
        mirror.append(-1 if m == i else m)
    return BoneTable(tuple(names), np.array(skeleton.bones, np.int64).reshape(-1, 2), np.array(low), np.array(high),
                     np.array(rigid, bool), np.array(mirror, np.int64))  # fmt: skip


def bone_lengths(poses_3d: npt.NDArray[np.floating], table: BoneTable) -> npt.NDArray[np.float64]:
    """Lengths (N, B) in the poses' units (metres) of poses (N, J, 3)."""
    p = np.asarray(poses_3d, dtype=np.float64)
    return np.linalg.norm(p[:, table.pairs[:, 0]] - p[:, table.pairs[:, 1]], axis=-1)


def check_subject(
    mean_m: npt.NDArray[np.floating], std_m: npt.NDArray[np.floating], table: BoneTable, rigid_std_m: float
) -> list[dict[str, Any]]:
    """Problems of one subject's bones: each {"bone", "problem", "value", "limit"}.

    Args:
        mean_m, std_m: (B,) mean and standard deviation of each bone's length, metres.
        table: the bones.
        rigid_std_m: largest acceptable standard deviation of a rigid bone, metres.

    Problems: "length" (mean outside the plausible range; value = the mean, limit = [low, high]),
    "varies" (a rigid bone's std above rigid_std_m), "asymmetric" (a rigid left bone and its right
    mirror differ by more than ASYMMETRY_LIMIT of their mean; reported once, on the left bone).
    """
    problems: list[dict[str, Any]] = []
    for b, name in enumerate(table.names):
        m, s = float(mean_m[b]), float(std_m[b])
        if np.isfinite(table.low_m[b]) and not (table.low_m[b] <= m <= table.high_m[b]):
            problems.append({"bone": name, "problem": "length", "value": m,
                             "limit": [float(table.low_m[b]), float(table.high_m[b])]})  # fmt: skip
        if table.rigid[b] and s > rigid_std_m:
            problems.append({"bone": name, "problem": "varies", "value": s, "limit": rigid_std_m})
        mb = table.mirror[b]
        if table.rigid[b] and mb >= 0 and name.startswith("left_"):
            pair_mean = 0.5 * (m + float(mean_m[mb]))
            asym = abs(m - float(mean_m[mb])) / pair_mean if pair_mean > 0 else 0.0
            if asym > ASYMMETRY_LIMIT:
                problems.append({"bone": name, "problem": "asymmetric", "value": asym, "limit": ASYMMETRY_LIMIT})
    return problems
