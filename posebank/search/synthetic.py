"""Pose-like random 2D data for search tests and benchmarks (no bank file needed).

`random_poses_2d` builds 13-joint (j13 order) 3D bodies with plausible bone lengths and random joint
directions, turns them by a random virtual camera and projects them orthographically, as the bank
does. `random_masks` draws visibility masks with the mix seen in MPII annotations (valid_a.h5, j13:
67% full body, 12% legs missing, 11% ankles missing, then a long tail of 40 rare patterns).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ..geometry import project_orthographic, view_rotation, world_to_camera
from ..skeleton import get_skeleton

_J13 = get_skeleton("j13")
_IDX = {name: i for i, name in enumerate(_J13.joint_names)}


def _unit(v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def random_poses_3d(n: int, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """(n, 13, 3) body poses in metres, world frame (+Y up), centred on the pelvis, j13 order."""
    up = np.array([0.0, 1.0, 0.0])
    down = -up
    size = rng.uniform(0.85, 1.15, size=(n, 1))
    # Torso: lean forward/sideways, twist of the shoulder line about the spine.
    spine = _unit(up + rng.normal(0.0, [0.12, 0.0, 0.35], size=(n, 3)))
    twist = rng.normal(0.0, 0.35, size=n)
    shoulder_axis = _unit(np.stack([np.cos(twist), np.zeros(n), np.sin(twist)], axis=1))
    hip_axis = _unit(np.array([1.0, 0.0, 0.0]) + rng.normal(0.0, 0.1, size=(n, 3)) * [0, 0, 1])
    thorax = 0.52 * spine
    out = np.zeros((n, 13, 3))
    out[:, _IDX["right_hip"]] = -0.1 * hip_axis
    out[:, _IDX["left_hip"]] = 0.1 * hip_axis
    out[:, _IDX["right_shoulder"]] = thorax - 0.18 * shoulder_axis
    out[:, _IDX["left_shoulder"]] = thorax + 0.18 * shoulder_axis
    out[:, _IDX["head"]] = thorax + 0.24 * _unit(spine + rng.normal(0.0, 0.25, size=(n, 3)))
    for side in ("right", "left"):
        # Arms anywhere, forearm bent relative to the upper arm; legs mostly down, knees bending forward.
        upper = _unit(rng.normal(size=(n, 3)) + 0.6 * down)
        fore = _unit(upper + rng.normal(0.0, 0.8, size=(n, 3)))
        out[:, _IDX[f"{side}_elbow"]] = out[:, _IDX[f"{side}_shoulder"]] + 0.29 * upper
        out[:, _IDX[f"{side}_wrist"]] = out[:, _IDX[f"{side}_elbow"]] + 0.26 * fore
        thigh = _unit(down + rng.normal(0.0, [0.25, 0.1, 0.6], size=(n, 3)))
        shin = _unit(down + rng.normal(0.0, [0.15, 0.1, 0.5], size=(n, 3)) - [0.0, 0.0, 0.3])
        out[:, _IDX[f"{side}_knee"]] = out[:, _IDX[f"{side}_hip"]] + 0.44 * thigh
        out[:, _IDX[f"{side}_ankle"]] = out[:, _IDX[f"{side}_knee"]] + 0.42 * shin
    return out * size[:, :, None]


def random_poses_2d(n: int, rng: np.random.Generator) -> npt.NDArray[np.float32]:
    """(n, 13, 2) float32 bank-like 2D poses: random bodies, random cameras, orthographic projection (m)."""
    poses = random_poses_3d(n, rng)
    rotations = view_rotation(
        rng.uniform(0.0, 2 * np.pi, n), np.deg2rad(rng.uniform(-20.0, 45.0, n)), np.deg2rad(rng.normal(0.0, 8.0, n))
    )
    return project_orthographic(world_to_camera(poses, rotations)).astype(np.float32)


def _pattern(hidden: tuple[str, ...]) -> npt.NDArray[np.bool_]:
    mask = np.ones(13, dtype=bool)
    mask[[_IDX[name] for name in hidden]] = False
    return mask


# (share, hidden joints): frequent MPII-like patterns; the rest of the mass goes to rare random masks.
FREQUENT_PATTERNS: tuple[tuple[float, tuple[str, ...]], ...] = (
    (0.60, ()),
    (0.13, ("right_ankle", "left_ankle", "right_knee", "left_knee")),
    (0.11, ("right_ankle", "left_ankle")),
    (0.03, ("left_ankle",)),
    (0.03, ("right_ankle", "left_ankle", "right_knee", "left_knee", "right_hip", "left_hip")),
    (0.02, ("right_wrist",)),
)


def random_masks(n: int, rng: np.random.Generator, rare_share: float = 0.05) -> npt.NDArray[np.bool_]:
    """(n, 13) bool masks: the FREQUENT_PATTERNS mix, and `rare_share` with 1-6 random hidden joints."""
    shares = np.array([s for s, _ in FREQUENT_PATTERNS])
    shares = shares / shares.sum() * (1.0 - rare_share)
    patterns = np.stack([_pattern(h) for _, h in FREQUENT_PATTERNS])
    choice = rng.choice(len(patterns) + 1, size=n, p=np.append(shares, rare_share))
    masks = patterns[np.minimum(choice, len(patterns) - 1)].copy()
    rare = np.flatnonzero(choice == len(patterns))
    for i in rare:
        hidden = rng.choice(13, size=rng.integers(1, 7), replace=False)
        masks[i] = True
        masks[i, hidden] = False
    return masks


def random_queries(n: int, rng: np.random.Generator, noise: float = 0.03) -> npt.NDArray[np.float32]:
    """(n, 13, 2) queries: bank-like poses seen at image scale (pixels), near but not equal to the bank.

    Fresh random bodies (not bank rows) with `noise` (relative to body size) jitter, scaled to
    ~200 px and shifted to a random image position, as annotations would be.
    """
    poses = random_poses_2d(n, rng).astype(np.float64)
    poses += rng.normal(0.0, noise, size=poses.shape)
    poses = poses * rng.uniform(150.0, 400.0, size=(n, 1, 1)) + rng.uniform(0.0, 1000.0, size=(n, 1, 2))
    return poses.astype(np.float32)
