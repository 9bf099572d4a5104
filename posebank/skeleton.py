"""The canonical skeletons (j13, j17) and the name-based mapping from a source skeleton onto them.

Joint order is the LCR-Net release order (docs/design.md). Every source skeleton reaches the canonical one
through a name table in its manifest (manifests/<source>.toml, section [joints]); no code here knows
any source's indices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .errors import MappingError

J13_NAMES: tuple[str, ...] = (
    "right_ankle", "left_ankle", "right_knee", "left_knee", "right_hip", "left_hip",
    "right_wrist", "left_wrist", "right_elbow", "left_elbow", "right_shoulder", "left_shoulder",
    "head",
)  # fmt: skip
J17_NAMES: tuple[str, ...] = J13_NAMES + ("pelvis", "spine", "thorax", "neck")

# Bones for drawing and bone-length checks, as (child, parent) names.
_BONES_J13 = (
    ("right_ankle", "right_knee"), ("left_ankle", "left_knee"),
    ("right_knee", "right_hip"), ("left_knee", "left_hip"),
    ("right_wrist", "right_elbow"), ("left_wrist", "left_elbow"),
    ("right_elbow", "right_shoulder"), ("left_elbow", "left_shoulder"),
    ("right_hip", "left_hip"), ("right_shoulder", "left_shoulder"),
    ("right_shoulder", "right_hip"), ("left_shoulder", "left_hip"),
)  # fmt: skip
_BONES_J13_HEAD = (("head", "right_shoulder"), ("head", "left_shoulder"))
_BONES_J17 = (
    ("pelvis", "right_hip"), ("pelvis", "left_hip"), ("spine", "pelvis"), ("thorax", "spine"),
    ("neck", "thorax"), ("head", "neck"), ("right_shoulder", "thorax"), ("left_shoulder", "thorax"),
)  # fmt: skip


@dataclass(frozen=True)
class Skeleton:
    """A canonical joint set.

    Attributes:
        name: "j13" or "j17".
        joint_names: (J,) names in storage order.
        bones: pairs of joint indices (child, parent) drawn as limbs.
        flip_permutation: (J,) index of each joint's mirror joint (left <-> right), for flips.
        lower_body: indices of the lower-body joints (ankles and knees: what truncation removes).
        torso: indices of the joints whose mean is the body centre (both hips and both shoulders).
    """

    name: str
    joint_names: tuple[str, ...]
    bones: tuple[tuple[int, int], ...]
    flip_permutation: tuple[int, ...]
    lower_body: tuple[int, ...]
    torso: tuple[int, ...]

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    def index(self, name: str) -> int:
        return self.joint_names.index(name)


def upper_body_mask(skeleton: Skeleton) -> npt.NDArray[np.bool_]:
    """(J,) True for the upper-body joints: every joint but the lower body (ankles and knees), the
    joints an upper-body (truncated) box is drawn around, for anchors, shards and training targets."""
    mask = np.ones(skeleton.num_joints, dtype=bool)
    mask[list(skeleton.lower_body)] = False
    return mask


def _mirror_name(name: str) -> str:
    if name.startswith("left_"):
        return "right_" + name[5:]
    if name.startswith("right_"):
        return "left_" + name[6:]
    return name


def _build(name: str, joint_names: tuple[str, ...], bones: tuple[tuple[str, str], ...]) -> Skeleton:
    idx = {n: i for i, n in enumerate(joint_names)}
    return Skeleton(
        name=name,
        joint_names=joint_names,
        bones=tuple((idx[c], idx[p]) for c, p in bones),
        flip_permutation=tuple(idx[_mirror_name(n)] for n in joint_names),
        lower_body=tuple(idx[n] for n in ("right_ankle", "left_ankle", "right_knee", "left_knee")),
        torso=tuple(idx[n] for n in ("right_hip", "left_hip", "right_shoulder", "left_shoulder")),
    )


SKELETONS: dict[str, Skeleton] = {
    "j13": _build("j13", J13_NAMES, _BONES_J13 + _BONES_J13_HEAD),
    "j17": _build("j17", J17_NAMES, _BONES_J13 + _BONES_J17),
}


def get_skeleton(name: str) -> Skeleton:
    """The canonical skeleton called `name` ("j13" or "j17")."""
    try:
        return SKELETONS[name]
    except KeyError:
        raise ValueError(f"unknown skeleton {name!r}; choose one of {', '.join(SKELETONS)}") from None


def mapping_matrix(
    source_joint_names: tuple[str, ...] | list[str],
    joint_map: dict[str, tuple[str, ...]],
    skeleton: Skeleton,
    *,
    path: str = "",
) -> npt.NDArray[np.float64]:
    """Linear map from source joints to canonical joints, built from a name table.

    Each canonical joint is the mean of one or more named source joints (e.g. the MoCap head is the
    midpoint of the skull bone's two ends).

    Args:
        source_joint_names: (Js,) the source's joint names.
        joint_map: canonical name -> source names (from the manifest's [joints] table).
        skeleton: the target canonical skeleton.
        path: the file being mapped, for the error message.

    Returns:
        (J, Js) float64 weights W such that canonical = W @ source (per frame and coordinate).

    Raises:
        MappingError: a canonical joint has no entry, or names a joint the source lacks.
    """
    src = {n: i for i, n in enumerate(source_joint_names)}
    weights = np.zeros((skeleton.num_joints, len(source_joint_names)))
    for j, name in enumerate(skeleton.joint_names):
        if name not in joint_map:
            raise MappingError(path, f"the joint table has no entry for canonical joint {name!r}")
        parts = joint_map[name]
        missing = [p for p in parts if p not in src]
        if missing:
            raise MappingError(
                path,
                f"skeleton lacks joint(s) {', '.join(missing)} needed for canonical {name!r} "
                f"(it has: {', '.join(source_joint_names)})",
            )
        for p in parts:
            weights[j, src[p]] += 1.0 / len(parts)
    return weights


def to_canonical(
    positions: npt.NDArray[np.floating],
    source_joint_names: tuple[str, ...] | list[str],
    joint_map: dict[str, tuple[str, ...]],
    skeleton: Skeleton,
    *,
    path: str = "",
) -> npt.NDArray[np.float64]:
    """Map source joint positions (..., Js, D) onto the canonical skeleton, giving (..., J, D)."""
    weights = mapping_matrix(source_joint_names, joint_map, skeleton, path=path)
    return np.einsum("js,...sd->...jd", weights, positions)


def body_centre(poses: npt.NDArray[np.floating], skeleton: Skeleton) -> npt.NDArray[np.floating]:
    """Body centre (..., D) of poses (..., J, D): the mean of both hips and both shoulders."""
    return poses[..., list(skeleton.torso), :].mean(axis=-2)


def flip_left_right(poses: npt.NDArray[np.floating], skeleton: Skeleton) -> npt.NDArray[np.floating]:
    """Swap left and right joint labels of (..., J, D) poses (the coordinates are not mirrored)."""
    return poses[..., list(skeleton.flip_permutation), :]
