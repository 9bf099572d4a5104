"""Random virtual views of body-centred 3D poses, and their orthographic projections.

The angles of view v of pose p are a pure function of (seed, pose_id, v): a counter-based hash
(splitmix64), not a stateful generator. So a pose gets the same views whatever else is in the bank,
however the work is split into shards or workers, and in whatever order it runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..config import ViewConfig
from ..geometry import project_orthographic, view_rotation

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """The splitmix64 finaliser (Steele et al. 2014), vectorised; uint64 arithmetic wraps as intended."""
    with np.errstate(over="ignore"):
        x = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
        x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
        x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK64
        return x ^ (x >> np.uint64(31))


def hash_uniform(seed: int, keys: npt.NDArray[np.integer], stream: int) -> npt.NDArray[np.float64]:
    """Uniform [0, 1) numbers, one per key, determined by (seed, key, stream) alone."""
    x = _splitmix64(np.asarray(keys).astype(np.uint64) ^ _splitmix64(np.full(1, seed, np.uint64)))
    x = _splitmix64(x ^ _splitmix64(np.full(1, stream + 1, np.uint64)))
    return (x >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def hash_ids(
    labels: list[str], frames: npt.NDArray[np.integer], label_index: npt.NDArray[np.integer] | None = None
) -> npt.NDArray[np.int64]:
    """Stable 63-bit ids of (label, frame) pairs: a digest of the label mixed with the frame number.

    Args:
        labels: one label per frame, or (with `label_index`) the distinct labels.
        frames: (N,) frame numbers.
        label_index: (N,) index into `labels` of each frame's label (each label is digested once).
    """
    import hashlib

    label_keys = np.array(
        [int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "little") for s in labels],
        dtype=np.uint64,
    )
    if label_index is not None:
        label_keys = label_keys[np.asarray(label_index, dtype=np.int64)]
    x = _splitmix64(label_keys ^ _splitmix64(np.asarray(frames).astype(np.uint64)))
    return (x & np.uint64(0x7FFFFFFFFFFFFFFF)).astype(np.int64)


@dataclass(frozen=True)
class Views:
    """Angles (P, V) in degrees of V views of P poses: azimuth [0, 360), elevation, roll."""

    azimuth_deg: npt.NDArray[np.float64]
    elevation_deg: npt.NDArray[np.float64]
    roll_deg: npt.NDArray[np.float64]


def draw_views(seed: int, pose_ids: npt.NDArray[np.int64], config: ViewConfig) -> Views:
    """Draw `config.views` cameras for each pose id: azimuth uniform over 360 degrees, elevation
    uniform in [elevation_min, elevation_max], roll uniform in [-roll_max, roll_max]."""
    v = config.views
    keys = (np.asarray(pose_ids, dtype=np.int64).astype(np.uint64)[:, None] * np.uint64(v)
            + np.arange(v, dtype=np.uint64)[None, :])  # fmt: skip
    u_az, u_el, u_roll = (hash_uniform(seed, keys, s) for s in range(3))
    return Views(
        azimuth_deg=360.0 * u_az,
        elevation_deg=config.elevation_min_deg + (config.elevation_max_deg - config.elevation_min_deg) * u_el,
        roll_deg=config.roll_max_deg * (2.0 * u_roll - 1.0),
    )


def project_views(
    poses_world_m: npt.NDArray[np.floating], views: Views
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Orient P body-centred world poses (P, J, 3) in each of their V views.

    Returns:
        pose_3d: (P, V, J, 3) float32 metres in each camera frame (x right, y down, z forward).
        pose_2d: (P, V, J, 2) float32 metres, the orthographic projection (x, y) of pose_3d.
    """
    rot = view_rotation(
        np.deg2rad(views.azimuth_deg), np.deg2rad(views.elevation_deg), np.deg2rad(views.roll_deg)
    )  # (P, V, 3, 3)
    # Nine broadcast multiply-adds in float32 (what the bank stores): millions of 3x3 products are
    # several times faster this way than as batched matmul or einsum.
    poses = np.asarray(poses_world_m, dtype=np.float32)[:, None]  # (P, 1, J, 3)
    rot = rot.astype(np.float32)[:, :, None]  # (P, V, 1, 3, 3)
    pose_3d = np.empty(rot.shape[:2] + poses.shape[2:], dtype=np.float32)
    for k in range(3):
        pose_3d[..., k] = poses[..., 0] * rot[..., k, 0] + poses[..., 1] * rot[..., k, 1] + poses[..., 2] * rot[..., k, 2]
    return pose_3d, project_orthographic(pose_3d).copy()
