"""Scenes: which bank poses, where, how large, how far, in which colours; and drawing them at random.

The synthetic camera is the bank's own view, orthographic per person (weak perspective): person p's
joint j is drawn at pose_2d = scale_p * (x, y) + offset_p px and lies at depth distance_p + z metres,
where (x, y, z) = pose_3d[p, j] is the bank's body-centred camera-frame pose, used unchanged. Larger
people stand nearer (distance = focal / scale), so they occlude smaller ones as in a photo.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .body import BOTTOM, FOREARM, HAIR, NUM_SLOTS, SHIN, SKIN, TOP
from .config import SynthConfig

# Reference image height of SynthConfig.scale_range and focal_px.
REFERENCE_HEIGHT_PX = 512.0
# Skin tones, RGB in [0, 1], from light to dark; each person's is jittered.
_SKIN_TONES = np.array(
    [[0.96, 0.80, 0.69], [0.91, 0.72, 0.58], [0.82, 0.62, 0.47], [0.70, 0.50, 0.36], [0.55, 0.37, 0.25],
     [0.40, 0.26, 0.17], [0.30, 0.19, 0.12]]
)  # fmt: skip
# Hair colours, RGB in [0, 1]: black, dark brown, brown, auburn, blond, grey.
_HAIR_COLOURS = np.array(
    [[0.06, 0.05, 0.05], [0.20, 0.13, 0.08], [0.38, 0.25, 0.15], [0.50, 0.22, 0.10], [0.80, 0.66, 0.40],
     [0.62, 0.62, 0.62]]
)  # fmt: skip
_PLACEMENT_TRIES = 8
_MIN_SHARE_INSIDE = 0.5  # a truncated person keeps at least this share of its joints in the image
# Margin around the joints' box when placing people: the head and limbs stick out of it (metres).
_BODY_MARGIN_M = 0.12


@dataclass(frozen=True)
class Scene:
    """People to draw in one image.

    Attributes:
        width, height: image size, px.
        poses_3d: (P, J, 3) float32 body-centred camera-frame poses, metres (the bank's, unchanged).
        scales: (P,) px per metre.
        offsets: (P, 2) px, where each body centre (pose origin) is drawn.
        distances: (P,) metres from the camera to each body centre.
        thickness: (P,) factor on the body's limb radii.
        palettes: (P, NUM_SLOTS, 3) RGB in [0, 1] (slots of posebank.synth.body).
        light: (3,) unit vector towards the light, camera frame (z < 0: from the camera's side).
    """

    width: int
    height: int
    poses_3d: npt.NDArray[np.float32]
    scales: npt.NDArray[np.float64]
    offsets: npt.NDArray[np.float64]
    distances: npt.NDArray[np.float64]
    thickness: npt.NDArray[np.float64]
    palettes: npt.NDArray[np.float64]
    light: npt.NDArray[np.float64]

    @property
    def num_people(self) -> int:
        return len(self.poses_3d)

    @property
    def poses_2d(self) -> npt.NDArray[np.float64]:
        """(P, J, 2) joints in the image, px (origin top-left, x right, y down)."""
        xy = self.poses_3d[..., :2].astype(np.float64)
        return self.scales[:, None, None] * xy + self.offsets[:, None, :]

    @property
    def depths(self) -> npt.NDArray[np.float64]:
        """(P, J) joint depths, metres from the camera."""
        return self.distances[:, None] + self.poses_3d[..., 2].astype(np.float64)


def make_scene(
    poses_3d: npt.NDArray[np.floating],
    scales: npt.ArrayLike,
    offsets: npt.ArrayLike,
    distances: npt.ArrayLike,
    *,
    size: tuple[int, int],
    thickness: npt.ArrayLike | None = None,
    palettes: npt.NDArray[np.floating] | None = None,
    light: npt.ArrayLike = (-0.35, -0.45, -0.82),
) -> Scene:
    """A scene from explicit placements (tests, demos); defaults give each person a distinct hue.

    Args:
        poses_3d: (P, J, 3) body-centred camera-frame metres. scales (P,) px/m; offsets (P, 2) px;
        distances (P,) m; size (width, height) px; thickness (P,); palettes (P, NUM_SLOTS, 3).
    """
    poses = np.asarray(poses_3d, np.float32)
    if poses.ndim != 3 or poses.shape[-1] != 3:
        raise ValueError(f"poses_3d must be (P, J, 3), got {poses.shape}")
    p = len(poses)
    if palettes is None:
        hues = np.arange(p) / max(p, 1)
        palettes = np.stack([_plain_palette(_hsv(h, 0.7, 0.85)) for h in hues]) if p else np.zeros((0, NUM_SLOTS, 3))
    lv = np.asarray(light, np.float64)
    return Scene(
        width=int(size[0]), height=int(size[1]), poses_3d=poses,
        scales=np.asarray(scales, np.float64).reshape(p), offsets=np.asarray(offsets, np.float64).reshape(p, 2),
        distances=np.asarray(distances, np.float64).reshape(p),
        thickness=np.ones(p) if thickness is None else np.asarray(thickness, np.float64).reshape(p),
        palettes=np.asarray(palettes, np.float64), light=lv / np.linalg.norm(lv),
    )  # fmt: skip


def _hsv(h: float, s: float, v: float) -> npt.NDArray[np.float64]:
    """One HSV colour (all in [0, 1]) as RGB."""
    k = (np.array([5.0, 3.0, 1.0]) + h * 6.0) % 6.0
    return v - v * s * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def _plain_palette(rgb: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """One colour for the body, a darker one for the hair (so the facing shows)."""
    palette = np.tile(rgb, (NUM_SLOTS, 1))
    palette[HAIR] = rgb * 0.35
    return palette


def sample_palette(rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """A person's clothes and skin: (NUM_SLOTS, 3) RGB in [0, 1]."""
    skin = np.clip(_SKIN_TONES[rng.integers(len(_SKIN_TONES))] * rng.uniform(0.92, 1.08, 3), 0, 1)
    top = _hsv(rng.random(), rng.uniform(0.15, 0.9), rng.uniform(0.25, 0.95))
    bottom = _hsv(rng.random(), rng.uniform(0.1, 0.7), rng.uniform(0.15, 0.75))
    palette = np.empty((NUM_SLOTS, 3))
    palette[SKIN], palette[TOP], palette[BOTTOM] = skin, top, bottom
    palette[FOREARM] = skin if rng.random() < 0.4 else top  # short sleeves
    palette[SHIN] = skin if rng.random() < 0.15 else bottom  # shorts
    palette[HAIR] = np.clip(_HAIR_COLOURS[rng.integers(len(_HAIR_COLOURS))] * rng.uniform(0.85, 1.15), 0, 1)
    return palette


def _box(poses_2d_rel: npt.NDArray[np.float64], margin_px: float) -> npt.NDArray[np.float64]:
    """(x0, y0, x1, y1) around (J, 2) joints, grown by margin_px."""
    return np.concatenate([poses_2d_rel.min(0) - margin_px, poses_2d_rel.max(0) + margin_px])


def _overlap(box: npt.NDArray[np.float64], others: list[npt.NDArray[np.float64]]) -> float:
    """Largest share of the smaller box that `box` shares with any of `others` (0 when none)."""
    worst = 0.0
    for o in others:
        iw = min(box[2], o[2]) - max(box[0], o[0])
        ih = min(box[3], o[3]) - max(box[1], o[1])
        if iw > 0 and ih > 0:
            small = min((box[2] - box[0]) * (box[3] - box[1]), (o[2] - o[0]) * (o[3] - o[1]))
            worst = max(worst, iw * ih / max(small, 1e-9))
    return worst


def _place(
    rng: np.random.Generator, rel: npt.NDArray[np.float64], margin: float, width: int, height: int, truncate: bool
) -> npt.NDArray[np.float64]:
    """An offset (2,) px for a person whose joints relative to the body centre are `rel` (J, 2) px.

    Untruncated: the box (joints + margin) lies inside the image when it fits. Truncated: a random
    share (15-60%) of the box crosses one border, more often the bottom (legs cut, the paper's
    upper-body case).
    """
    lo, hi = rel.min(0) - margin, rel.max(0) + margin
    extent = hi - lo
    limits = np.array([width, height], np.float64)
    # Offset range that keeps [lo, hi] + offset inside [0, limit]; centred when it does not fit.
    fit_lo, fit_hi = -lo, limits - hi
    offset = np.where(fit_hi >= fit_lo, fit_lo + rng.random(2) * np.maximum(fit_hi - fit_lo, 0), (fit_lo + fit_hi) / 2)
    if truncate:
        side = rng.choice(4, p=[0.5, 1 / 6, 1 / 6, 1 / 6])  # bottom, top, left, right
        cut = rng.uniform(0.15, 0.6) * extent
        axis = 1 if side < 2 else 0
        if side in (0, 3):  # the box sticks out past the bottom / right border by `cut`
            offset[axis] = limits[axis] - hi[axis] + cut[axis]
        else:  # past the top / left border
            offset[axis] = -lo[axis] - cut[axis]
    return offset


def sample_scene(rng: np.random.Generator, pool: npt.NDArray[np.float32], config: SynthConfig) -> Scene:
    """Draw a scene: people from `pool`, scales, placements (some truncated), depths, colours, light.

    Args:
        rng: the image's own generator (its draws depend on nothing else).
        pool: (N, J, 3) float32 bank poses, body-centred camera frame, metres.
        config: people range, scale range, truncation probability, ...
    """
    width, height = config.size
    ref = height / REFERENCE_HEIGHT_PX
    count = int(rng.integers(config.people[0], config.people[1] + 1))
    rows = rng.integers(0, len(pool), size=count)
    poses = pool[rows]
    log_lo, log_hi = np.log(config.scale_range)
    scales = np.exp(rng.uniform(log_lo, log_hi, count)) * ref
    thickness = rng.uniform(*config.thickness_range, count)
    palettes = np.stack([sample_palette(rng) for _ in range(count)]) if count else np.zeros((0, NUM_SLOTS, 3))
    light = np.array([rng.uniform(-0.8, 0.8), rng.uniform(-0.9, 0.2), -rng.uniform(0.6, 1.4)])
    offsets = np.zeros((count, 2))
    boxes: list[npt.NDArray[np.float64]] = []
    # Nearest (largest) first, so that later, farther people avoid hiding behind them entirely.
    for p in np.argsort(-scales, kind="stable"):
        rel = poses[p, :, :2].astype(np.float64) * scales[p]
        margin = _BODY_MARGIN_M * scales[p]
        extent = rel.max(0) - rel.min(0) + 2 * margin
        truncate = rng.random() < config.truncation_prob
        if not truncate and (extent > [width, height]).any():  # too large to fit: shrink it
            shrink = 0.95 * min(width / extent[0], height / extent[1])
            scales[p] *= shrink
            rel, margin = rel * shrink, margin * shrink
        best, best_overlap = None, np.inf
        for _ in range(_PLACEMENT_TRIES):
            offset = _place(rng, rel, margin, width, height, truncate)
            joints = rel + offset
            inside = ((joints >= -0.5) & (joints < np.array([width, height]) - 0.5)).all(1).sum()
            if inside < _MIN_SHARE_INSIDE * len(joints):
                continue
            ov = _overlap(_box(joints, margin), boxes)
            if ov < best_overlap:
                best, best_overlap = offset, ov
            if ov <= config.max_overlap:
                break
        if best is None:  # no truncated placement kept enough joints: fall back to a whole person
            best = _place(rng, rel, margin, width, height, False)
        offsets[p] = best
        boxes.append(_box(rel + best, margin))
    distances = config.focal_px * ref / scales
    return Scene(
        width=width, height=height, poses_3d=poses, scales=scales, offsets=offsets, distances=distances,
        thickness=thickness, palettes=palettes, light=light / np.linalg.norm(light),
    )  # fmt: skip
