"""A small vectorised z-buffer rasteriser for shaded capsules and flat triangles (numpy only).

It knows nothing about people: a primitive is a capsule (a segment with a radius: limbs; a zero-length
one is a sphere: the head) or a triangle (the torso), with a depth in metres and an owner id.

Image coordinates: x right, y down, in pixels; pixel (row r, column c) is sampled at its centre
(x=c, y=r), so the pixel that shows a point (x, y) is (floor(y + 0.5), floor(x + 0.5)) (see
`pixel_of`). Depth is metres along the optical axis (+z forward): smaller is nearer.

The same depth functions serve two callers that must agree exactly: `rasterize` (per primitive, over
the pixels of its bounding box) and `surface_at` (every primitive at a few points, e.g. the joints, to
tell what is in front of them without a frame buffer). Both evaluate the same float32 element-wise
operations on the same values, so at a pixel centre they give bit-identical depths and the same
winner (the first primitive, in array order, with the strictly smallest depth).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

CAPSULE = 0
TRIANGLE = 1
# Lambert shading: ambient + diffuse * max(0, n . l).
AMBIENT = 0.35
DIFFUSE = 0.75

# Columns of Primitives.params for a capsule from a to b with radius r (px) ...
_C_AX, _C_AY, _C_DX, _C_DY, _C_ZA, _C_DZ, _C_R2, _C_INV_SCALE, _C_INV_R, _C_INV_LEN2 = range(10)
# ... and for a triangle (v0, v1, v2): edges e1 = v1 - v0, e2 = v2 - v0.
_T_X0, _T_Y0, _T_E1X, _T_E1Y, _T_E2X, _T_E2Y, _T_Z0, _T_DZ1, _T_DZ2, _T_INV_AREA = range(10)
NUM_PARAMS = 10


@dataclass(frozen=True)
class Primitives:
    """N primitives to draw, in drawing order (ties in depth go to the earlier one).

    Attributes:
        kind: (N,) int8, CAPSULE or TRIANGLE.
        params: (N, NUM_PARAMS) float32, see `capsules` and `triangles`.
        bbox: (N, 4) float64 x_min, x_max, y_min, y_max px of what the primitive can cover.
        owner: (N,) int16 id written in the id buffer (the person).
        colour: (N, 3) float32 base RGB in [0, 1].
        flat_shade: (N,) float32 shade of triangles (capsules are shaded per pixel).
    """

    kind: npt.NDArray[np.int8]
    params: npt.NDArray[np.float32]
    bbox: npt.NDArray[np.float64]
    owner: npt.NDArray[np.int16]
    colour: npt.NDArray[np.float32]
    flat_shade: npt.NDArray[np.float32]

    def __len__(self) -> int:
        return len(self.kind)


def capsules(
    a_px: npt.NDArray[np.floating],
    b_px: npt.NDArray[np.floating],
    za_m: npt.NDArray[np.floating],
    zb_m: npt.NDArray[np.floating],
    radius_px: npt.NDArray[np.floating],
    m_per_px: npt.NDArray[np.floating],
    owner: npt.NDArray[np.integer],
    colour: npt.NDArray[np.floating],
) -> Primitives:
    """Capsules: the points within `radius_px` of the segment a-b, seen as round tubes.

    Args:
        a_px, b_px: (N, 2) segment ends, image px (a == b gives a sphere).
        za_m, zb_m: (N,) depth of the axis at a and b, metres.
        radius_px: (N,) radius, px.
        m_per_px: (N,) metres per pixel of the owner (turns the tube's bulge into depth).
        owner: (N,) ids; colour: (N, 3) RGB in [0, 1].
    """
    a = np.asarray(a_px, np.float64)
    d = np.asarray(b_px, np.float64) - a
    r = np.asarray(radius_px, np.float64)
    len2 = (d**2).sum(-1)
    params = np.zeros((len(a), NUM_PARAMS), np.float64)
    params[:, _C_AX], params[:, _C_AY] = a[:, 0], a[:, 1]
    params[:, _C_DX], params[:, _C_DY] = d[:, 0], d[:, 1]
    params[:, _C_ZA] = za_m
    params[:, _C_DZ] = np.asarray(zb_m) - np.asarray(za_m)
    params[:, _C_R2] = r**2
    params[:, _C_INV_SCALE] = m_per_px
    params[:, _C_INV_R] = 1.0 / r
    # A sphere has no axis direction: t stays 0 and the nearest axis point is a.
    params[:, _C_INV_LEN2] = np.where(len2 > 1e-12, 1.0 / np.maximum(len2, 1e-12), 0.0)
    ends = np.stack([a, a + d])
    bbox = np.stack([ends[..., 0].min(0) - r, ends[..., 0].max(0) + r, ends[..., 1].min(0) - r, ends[..., 1].max(0) + r], -1)
    n = len(a)
    return Primitives(
        kind=np.full(n, CAPSULE, np.int8), params=params.astype(np.float32), bbox=bbox,
        owner=np.asarray(owner, np.int16), colour=np.asarray(colour, np.float32), flat_shade=np.ones(n, np.float32),
    )  # fmt: skip


def triangles(
    vertices_px: npt.NDArray[np.floating],
    z_m: npt.NDArray[np.floating],
    owner: npt.NDArray[np.integer],
    colour: npt.NDArray[np.floating],
    shade: npt.NDArray[np.floating],
) -> Primitives:
    """Flat triangles with depth interpolated between their corners.

    Args:
        vertices_px: (N, 3, 2) corners, image px. Slivers under 0.5 px^2 of area cover nothing.
        z_m: (N, 3) corner depths, metres.
        owner: (N,) ids; colour: (N, 3) RGB in [0, 1]; shade: (N,) flat shading factor.
    """
    v = np.asarray(vertices_px, np.float64)
    z = np.asarray(z_m, np.float64)
    e1, e2 = v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]
    area = e1[:, 0] * e2[:, 1] - e2[:, 0] * e1[:, 1]  # twice the signed area
    params = np.zeros((len(v), NUM_PARAMS), np.float64)
    params[:, _T_X0], params[:, _T_Y0] = v[:, 0, 0], v[:, 0, 1]
    params[:, _T_E1X], params[:, _T_E1Y] = e1[:, 0], e1[:, 1]
    params[:, _T_E2X], params[:, _T_E2Y] = e2[:, 0], e2[:, 1]
    params[:, _T_Z0], params[:, _T_DZ1], params[:, _T_DZ2] = z[:, 0], z[:, 1] - z[:, 0], z[:, 2] - z[:, 0]
    # 0 marks a sliver: its barycentric weights are all 0 then, and the coverage test rejects them.
    params[:, _T_INV_AREA] = np.where(np.abs(area) >= 1.0, 1.0 / np.where(area == 0, 1.0, area), 0.0)
    bbox = np.stack([v[..., 0].min(1), v[..., 0].max(1), v[..., 1].min(1), v[..., 1].max(1)], -1)
    n = len(v)
    return Primitives(
        kind=np.full(n, TRIANGLE, np.int8), params=params.astype(np.float32), bbox=bbox,
        owner=np.asarray(owner, np.int16), colour=np.asarray(colour, np.float32),
        flat_shade=np.asarray(shade, np.float32),
    )  # fmt: skip


def concatenate(parts: list[Primitives]) -> Primitives:
    """Primitives of `parts` one after the other (drawing order is kept)."""
    return Primitives(*(np.concatenate([getattr(p, f) for p in parts]) for f in Primitives.__dataclass_fields__))


def pixel_of(points_px: npt.NDArray[np.floating]) -> npt.NDArray[np.int64]:
    """(..., 2) points (x, y) px -> (..., 2) integer (column, row) of the pixel that shows them."""
    return np.floor(np.asarray(points_px, np.float64) + 0.5).astype(np.int64)


def _capsule_depth(
    xs: npt.NDArray[np.float32], ys: npt.NDArray[np.float32], p: npt.NDArray[np.float32], light: npt.NDArray[np.float32] | None
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32] | None]:
    """Depth (inf where not covered) and, with `light`, the shade of capsule(s) `p` at points (xs, ys).

    `p` is the parameter vector split into columns: either scalars (one capsule over a pixel grid:
    xs (1, w), ys (h, 1)) or (N, 1) columns (N capsules at n points: xs, ys (n,)). The depth is the
    front of the tube: the axis depth at the nearest axis point minus the half-chord sqrt(r^2 - d^2).
    """
    px = xs - p[_C_AX]
    py = ys - p[_C_AY]
    t = (px * p[_C_DX] + py * p[_C_DY]) * p[_C_INV_LEN2]
    t = np.clip(t, np.float32(0), np.float32(1))
    ex = px - t * p[_C_DX]
    ey = py - t * p[_C_DY]
    h2 = p[_C_R2] - (ex * ex + ey * ey)
    h = np.sqrt(np.maximum(h2, np.float32(0)))
    depth = np.where(h2 >= 0, (p[_C_ZA] + t * p[_C_DZ]) - h * p[_C_INV_SCALE], np.float32(np.inf))
    if light is None:
        return depth, None
    # Outward normal (ex, ey, -h) / r in px units; the light vector points to the light.
    ndotl = (ex * light[0] + ey * light[1] - h * light[2]) * p[_C_INV_R]
    return depth, AMBIENT + DIFFUSE * np.maximum(ndotl, np.float32(0))


def _triangle_depth(xs: npt.NDArray[np.float32], ys: npt.NDArray[np.float32], p: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Depth (inf where not covered) of triangle(s) `p` at points (xs, ys); shapes as `_capsule_depth`."""
    px = xs - p[_T_X0]
    py = ys - p[_T_Y0]
    w1 = (px * p[_T_E2Y] - p[_T_E2X] * py) * p[_T_INV_AREA]
    w2 = (p[_T_E1X] * py - px * p[_T_E1Y]) * p[_T_INV_AREA]
    inside = (w1 >= 0) & (w2 >= 0) & (w1 + w2 <= 1) & (p[_T_INV_AREA] != 0)
    return np.where(inside, p[_T_Z0] + w1 * p[_T_DZ1] + w2 * p[_T_DZ2], np.float32(np.inf))


@dataclass(frozen=True)
class Frame:
    """The rasteriser's buffers, (H, W) each.

    Attributes:
        depth: float32 metres of the visible surface, inf where nothing is drawn.
        owner: int16 owner id of the visible primitive, -1 for background.
        primitive: int32 index of the visible primitive, -1 for background.
        shade: float32 shading factor of the visible surface.
    """

    depth: npt.NDArray[np.float32]
    owner: npt.NDArray[np.int16]
    primitive: npt.NDArray[np.int32]
    shade: npt.NDArray[np.float32]


def rasterize(
    prims: Primitives, height: int, width: int, light: npt.NDArray[np.floating], *, clip_to_bbox: bool = True
) -> Frame:
    """Draw `prims` into z/id/shade buffers with a depth test (nearest wins, ties to the earlier).

    Args:
        prims: the primitives; light: (3,) unit vector towards the light, camera frame.
        clip_to_bbox: evaluate each primitive over its bounding box only (the fast path). False
            evaluates every primitive over the whole image: the plain baseline of the benchmark;
            both give identical buffers.
    """
    depth = np.full((height, width), np.inf, np.float32)
    owner = np.full((height, width), -1, np.int16)
    index = np.full((height, width), -1, np.int32)
    shade = np.ones((height, width), np.float32)
    light32 = np.asarray(light, np.float32)
    cols = np.arange(width, dtype=np.float32)[None, :]
    rows = np.arange(height, dtype=np.float32)[:, None]
    if clip_to_bbox:
        # Pixel centres c with x_min <= c <= x_max, clipped to the image.
        lo = np.ceil(prims.bbox[:, [0, 2]]).astype(np.int64)
        hi = np.floor(prims.bbox[:, [1, 3]]).astype(np.int64) + 1
        lo = np.maximum(lo, 0)
        hi = np.minimum(hi, [width, height])
    for k in range(len(prims)):
        if clip_to_bbox:
            (x0, y0), (x1, y1) = lo[k], hi[k]
            if x0 >= x1 or y0 >= y1:
                continue
        else:
            x0, y0, x1, y1 = 0, 0, width, height
        p = prims.params[k]
        xs, ys = cols[:, x0:x1], rows[y0:y1]
        if prims.kind[k] == CAPSULE:
            z, s = _capsule_depth(xs, ys, p, light32)
        else:
            z, s = _triangle_depth(xs, ys, p), prims.flat_shade[k]
        zsub = depth[y0:y1, x0:x1]
        nearer = z < zsub
        np.copyto(zsub, z, where=nearer)
        np.copyto(owner[y0:y1, x0:x1], prims.owner[k], where=nearer)
        np.copyto(index[y0:y1, x0:x1], k, where=nearer)
        np.copyto(shade[y0:y1, x0:x1], s, where=nearer)
    return Frame(depth=depth, owner=owner, primitive=index, shade=shade)


def shade_colours(frame: Frame, prims: Primitives, background: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """The image (H, W, 3) uint8: each drawn pixel is its primitive's colour x shade, else `background`."""
    image = background.copy()
    drawn = frame.primitive >= 0
    rgb = prims.colour[frame.primitive[drawn]] * frame.shade[drawn][:, None]
    image[drawn] = np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return image


def surface_at(
    prims: Primitives, points_px: npt.NDArray[np.floating]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int16], npt.NDArray[np.int64]]:
    """What `rasterize` would show at given points, without drawing a frame (works off-image too).

    Args:
        points_px: (n, 2) x, y px. At integer coordinates (pixel centres) the answer is bit-identical
            to the frame's pixel.

    Returns:
        depth (n,) float32 metres (inf: nothing), owner (n,) int16 (-1: nothing), primitive (n,) index (-1).
    """
    pts = np.asarray(points_px, np.float32).reshape(-1, 2)
    n = len(pts)
    if len(prims) == 0 or n == 0:
        return np.full(n, np.inf, np.float32), np.full(n, -1, np.int16), np.full(n, -1, np.int64)
    xs, ys = pts[:, 0], pts[:, 1]
    z = np.full((len(prims), n), np.inf, np.float32)
    for kind in (CAPSULE, TRIANGLE):
        sel = np.flatnonzero(prims.kind == kind)
        if len(sel) == 0:
            continue
        cols = prims.params[sel].T[:, :, None]  # (NUM_PARAMS, m, 1): one column per parameter
        if kind == CAPSULE:
            z[sel] = _capsule_depth(xs, ys, cols, None)[0]
        else:
            z[sel] = _triangle_depth(xs, ys, cols)
    first = np.argmin(z, axis=0)  # first occurrence of the minimum: the raster's tie rule
    zmin = z[first, np.arange(n)]
    hit = np.isfinite(zmin)
    owner = np.where(hit, prims.owner[first], -1).astype(np.int16)
    return zmin, owner, np.where(hit, first, -1)
