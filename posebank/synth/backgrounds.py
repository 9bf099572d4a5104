"""Procedural backgrounds: smooth noise, gradients and textures (stripes, checks, plaid), in numpy.

Cheap on purpose (a few ms at 512x512): a low-resolution random grid is upsampled with two small
matrix products (separable smooth interpolation) instead of evaluating noise per pixel.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

KINDS: tuple[str, ...] = ("noise", "gradient", "texture")


def _upsample_matrix(cells: int, size: int) -> npt.NDArray[np.float32]:
    """(size, cells + 1) weights that interpolate a (cells + 1)-point grid smoothly onto `size` pixels."""
    u = (np.arange(size) + 0.5) * (cells / size)
    i = np.minimum(u.astype(np.int64), cells - 1)
    f = u - i
    f = f * f * (3.0 - 2.0 * f)  # smoothstep: no visible grid lines
    m = np.zeros((size, cells + 1), np.float32)
    m[np.arange(size), i] = 1.0 - f
    m[np.arange(size), i + 1] = f
    return m


def _smooth_noise(
    rng: np.random.Generator, height: int, width: int, channels: int, cells: int, octaves: int
) -> npt.NDArray[np.float32]:
    """(channels, H, W) value noise in about [0, 1]: `octaves` octaves from `cells` cells across."""
    fine = cells * 2 ** (octaves - 1)
    grid = np.zeros((channels, fine + 1, fine + 1), np.float32)
    amplitude, total = 1.0, 0.0
    for o in range(octaves):
        c = cells * 2**o
        up = _upsample_matrix(c, fine + 1)
        grid += np.float32(amplitude) * (up @ rng.random((channels, c + 1, c + 1), dtype=np.float32) @ up.T)
        total += amplitude
        amplitude *= 0.5
    grid /= np.float32(total)
    # Separable upsampling: two matrix products per channel, (H, f) @ (f, f) @ (f, W).
    return _upsample_matrix(fine, height) @ grid @ _upsample_matrix(fine, width).T


def _colour(rng: np.random.Generator) -> npt.NDArray[np.float32]:
    """A random RGB colour (3,) in [0.05, 0.95]."""
    return rng.uniform(0.05, 0.95, 3).astype(np.float32)


# Images are built as (3, H, W) planes, channel by channel with scalar colours: numpy broadcasting a
# (3, 1, 1) colour over (H, W) runs about 30x slower than three plane operations.
def _mix(t: npt.NDArray[np.float32], c0: npt.NDArray[np.float32], c1: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """(H, W) weights in [0, 1] -> (3, H, W) colours between c0 and c1."""
    out = np.empty((3, *t.shape), np.float32)
    for c in range(3):
        np.multiply(t, c1[c] - c0[c], out=out[c])
        out[c] += c0[c]
    return out


def _coords(height: int, width: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Pixel coordinates scaled so that the longer side spans [0, 1): (1, W) x and (H, 1) y."""
    s = np.float32(1.0 / max(height, width))
    return np.arange(width, dtype=np.float32)[None, :] * s, np.arange(height, dtype=np.float32)[:, None] * s


def _noise(rng: np.random.Generator, height: int, width: int) -> npt.NDArray[np.float32]:
    n = _smooth_noise(rng, height, width, 2, int(rng.integers(2, 6)), 4)
    # Contrast-stretched noise between two colours, under a second noise as uneven light:
    # clouds, foliage, plaster.
    t = np.clip((n[0] - 0.5) * np.float32(rng.uniform(1.5, 3.0)) + 0.5, 0, 1)
    img = _mix(t, _colour(rng), _colour(rng))
    img *= 1.0 + (n[1] - 0.5) * np.float32(rng.uniform(0.3, 0.8))
    return img


def _gradient(rng: np.random.Generator, height: int, width: int) -> npt.NDArray[np.float32]:
    x, y = _coords(height, width)
    if rng.random() < 0.5:
        a = rng.uniform(0, 2 * np.pi)
        t = x * np.float32(np.cos(a)) + y * np.float32(np.sin(a))
    else:  # radial, around a random centre
        cx, cy = rng.uniform(0, 1, 2).astype(np.float32)
        t = np.sqrt((x - cx) ** 2 + (y - cy) ** 2)
    t = (t - t.min()) / np.float32(max(float(t.max() - t.min()), 1e-6))
    img = _mix(t, _colour(rng), _colour(rng))
    img += (_smooth_noise(rng, height, width, 1, 4, 3)[0] - 0.5) * np.float32(rng.uniform(0.05, 0.25))
    return img


def _texture(rng: np.random.Generator, height: int, width: int) -> npt.NDArray[np.float32]:
    x, y = _coords(height, width)
    a = rng.uniform(0, np.pi)
    u = x * np.float32(np.cos(a)) + y * np.float32(np.sin(a))
    v = y * np.float32(np.cos(a)) - x * np.float32(np.sin(a))
    f = np.float32(2 * np.pi * rng.uniform(4, 30))
    pattern = rng.integers(3)
    if pattern == 0:  # stripes (soft or hard)
        t = 0.5 + 0.5 * np.sin(u * f)
        if rng.random() < 0.5:
            t = (t > 0.5).astype(np.float32)
    elif pattern == 1:  # checks / tiles
        t = ((np.sin(u * f) > 0) ^ (np.sin(v * f) > 0)).astype(np.float32)
    else:  # plaid: two stripe sets of different widths
        t = 0.25 * (2 + np.sin(u * f) + np.sin(v * f * np.float32(rng.uniform(0.5, 2.0))))
    img = _mix(np.broadcast_to(t, (height, width)), _colour(rng), _colour(rng))
    # Uneven lighting and wear over the pattern.
    img *= 0.75 + 0.5 * _smooth_noise(rng, height, width, 1, 3, 3)[0]
    return img


_MAKERS: dict[str, Callable[[np.random.Generator, int, int], npt.NDArray[np.float32]]] = {
    "noise": _noise, "gradient": _gradient, "texture": _texture,
}  # fmt: skip


def make_background(rng: np.random.Generator, height: int, width: int, kind: str | None = None) -> npt.NDArray[np.uint8]:
    """A random background image.

    Args:
        rng: the generator (the image's own background stream).
        height, width: px.
        kind: "noise", "gradient" or "texture"; None draws one.

    Returns:
        (H, W, 3) uint8 RGB.
    """
    if kind is None:
        kind = KINDS[int(rng.integers(len(KINDS)))]
    try:
        make = _MAKERS[kind]
    except KeyError:
        raise ValueError(f"unknown background kind {kind!r}; choose from {', '.join(KINDS)}") from None
    planes = np.clip(make(rng, height, width) * np.float32(255.0) + np.float32(0.5), 0, 255).astype(np.uint8)
    image = np.empty((height, width, 3), np.uint8)
    for c in range(3):
        image[..., c] = planes[c]
    return image
