"""Render a scene and label its joints: the image, and per person the 2D pose, visibility and occlusion.

Labels come from the same depth functions as the pixels (`raster.surface_at` at each joint's pixel),
so they never disagree with the image, and they can be computed without drawing (a resumed run
re-labels images already on disk for free).

A joint is *occluded* when the surface drawn at its pixel belongs to another person, or to the same
person but stands in front of the joint by more than the joint's own tube (a wrist behind the back,
the far shoulder in a side view). It is *visible* when it is inside the image and not occluded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .body import BodyModel, dress_person
from .raster import Primitives, capsules, concatenate, pixel_of, rasterize, shade_colours, surface_at
from .scene import Scene

_OCCLUSION_MARGIN_M = 0.02  # slack added to a joint's own tube radius in the depth test


@dataclass(frozen=True)
class Labels:
    """Per-person joint labels of a scene, P people x J joints.

    Attributes:
        poses_2d: (P, J, 2) float64 px, origin top-left; every joint, also those outside the image.
        inside: (P, J) bool, the joint's pixel is in the image.
        occluded: (P, J) bool, hidden by a nearer body part of anyone (itself included).
        visible: (P, J) bool, inside and not occluded.
    """

    poses_2d: npt.NDArray[np.float64]
    inside: npt.NDArray[np.bool_]
    occluded: npt.NDArray[np.bool_]
    visible: npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Rendered:
    """A rendered scene.

    Attributes:
        image: (H, W, 3) uint8 RGB.
        labels: the joint labels.
        depth: (H, W) float32 metres of the visible surface (inf: background).
        person_ids: (H, W) int16 person drawn at each pixel (-1: background).
    """

    image: npt.NDArray[np.uint8]
    labels: Labels
    depth: npt.NDArray[np.float32]
    person_ids: npt.NDArray[np.int16]


def scene_primitives(scene: Scene, body: BodyModel) -> Primitives:
    """All people of `scene` as primitives (owner = person index)."""
    poses_2d, depths = scene.poses_2d, scene.depths
    parts = [
        dress_person(body, poses_2d[p], depths[p], scene.poses_3d[p].astype(np.float64), float(scene.scales[p]),
                     float(scene.thickness[p]), scene.palettes[p], p, scene.light)
        for p in range(scene.num_people)
    ]  # fmt: skip
    if not parts:
        return capsules(np.zeros((0, 2)), np.zeros((0, 2)), np.zeros(0), np.zeros(0), np.ones(0), np.ones(0),
                        np.zeros(0, np.int16), np.zeros((0, 3)))  # fmt: skip
    return concatenate(parts)


def label_scene(scene: Scene, body: BodyModel, prims: Primitives | None = None) -> Labels:
    """Joint labels of `scene` (no frame buffer needed). `prims` saves rebuilding the primitives."""
    prims = scene_primitives(scene, body) if prims is None else prims
    poses_2d = scene.poses_2d
    p, j = poses_2d.shape[:2]
    pix = pixel_of(poses_2d)  # (P, J, 2) column, row
    inside = (pix[..., 0] >= 0) & (pix[..., 0] < scene.width) & (pix[..., 1] >= 0) & (pix[..., 1] < scene.height)
    zmin, owner, _ = surface_at(prims, pix.reshape(-1, 2).astype(np.float32))
    zmin, owner = zmin.reshape(p, j), owner.reshape(p, j)
    # How far a joint's own tube may stand in front of it: its radius (at least the 1 px minimum).
    own = np.maximum(body.joint_radius_m[None, :] * scene.thickness[:, None], 1.0 / scene.scales[:, None])
    in_front = zmin < scene.depths - own - _OCCLUSION_MARGIN_M
    occluded = (owner != np.arange(p)[:, None]) | in_front
    return Labels(poses_2d=poses_2d, inside=inside, occluded=occluded, visible=inside & ~occluded)


def render_scene(
    scene: Scene, body: BodyModel, background: npt.NDArray[np.uint8] | None = None, *, clip_to_bbox: bool = True
) -> Rendered:
    """Draw `scene` over `background` and label it.

    Args:
        scene: the people (see posebank.synth.scene).
        body: the body model of the poses' skeleton (posebank.synth.body.body_model).
        background: (H, W, 3) uint8, or None for mid grey.
        clip_to_bbox: False rasterises every primitive over the whole image (the benchmark's baseline).
    """
    h, w = scene.height, scene.width
    if background is None:
        background = np.full((h, w, 3), 128, np.uint8)
    if background.shape != (h, w, 3):
        raise ValueError(f"background must be ({h}, {w}, 3), got {background.shape}")
    prims = scene_primitives(scene, body)
    frame = rasterize(prims, h, w, scene.light, clip_to_bbox=clip_to_bbox)
    image = shade_colours(frame, prims, background)
    return Rendered(image=image, labels=label_scene(scene, body, prims), depth=frame.depth, person_ids=frame.owner)
