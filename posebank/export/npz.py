"""Annotation shards -> one .npz of arrays, in the spirit of VideoPose3D's and mmhuman3d's HumanData files.

Readable with numpy alone (`np.load(path)`, no pickle: every array is numeric, bool or unicode):
    keypoints2d (N, J, 3) float32: x, y px (the completed pose; 0 where none) and a confidence, 1 for an
        annotated joint, 0 otherwise (completed joints keep their coordinates: see keypoints2d_completed)
    keypoints2d_completed (N, J) bool: the joint's coordinates come from the pseudo-3D completion
    keypoints2d_occluded (N, J) bool: the source's occlusion flag
    keypoints2d_mask (J,) uint8: 1 for every joint of the skeleton (HumanData's convention mask)
    keypoints3d (N, J, 4) float32: X, Y, Z m (camera frame, body-centred) and a confidence, 1 where the
        person has a pseudo-3D pose, 0 (and zeros) where not
    keypoints3d_mask (J,) uint8: as keypoints2d_mask
    bbox_xywh (N, 5) float32: x, y, w, h px and a confidence (1; 0 with zeros when the box is unknown)
    image_path (N,) str; dataset, split, source_format (N,) str; person, source_row, source_image_id,
        source_annotation_id (N,) int64 (-1 where the source has none); image_width, image_height (N,)
        int64 (-1 unknown); match_distance, error_estimate_mm (N,) float32 (NaN: unmatched)
    joint_names (J,) str, bones (B, 2) int64, flip_indices (J,) int64, flip_pairs (P, 2) int64
    meta: 0-d str, JSON of the skeleton, units and frames and the provenance.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..provenance import atomic_path
from ..skeleton import Skeleton
from .people import People, finite_or_zero, skeleton_info, units_and_frames


def npz_arrays(people: People, skeleton: Skeleton, provenance: dict[str, Any]) -> dict[str, np.ndarray]:
    """The arrays of the .npz (name -> array)."""
    info = skeleton_info(skeleton)
    j = skeleton.num_joints
    done = np.isfinite(people.pose_2d).all(-1)
    k2 = np.zeros((len(people), j, 3), np.float32)
    k2[..., :2] = np.where(done[..., None], finite_or_zero(people.pose_2d), 0.0)
    k2[..., 2] = people.visible
    has_3d = np.isfinite(people.pose_3d).all(axis=(1, 2))
    k3 = np.zeros((len(people), j, 4), np.float32)
    k3[has_3d, :, :3] = people.pose_3d[has_3d]
    k3[has_3d, :, 3] = 1.0
    box = people.box_full.astype(np.float64)
    has_box = np.isfinite(box).all(1)
    xywh = np.zeros((len(people), 5), np.float32)
    xywh[has_box, :2] = box[has_box, :2]
    xywh[has_box, 2:4] = box[has_box, 2:] - box[has_box, :2]
    xywh[has_box, 4] = 1.0
    meta = {"skeleton": info, "units": units_and_frames(people), "provenance": provenance}
    return {
        "keypoints2d": k2,
        "keypoints2d_completed": people.completed,
        "keypoints2d_occluded": people.occluded,
        "keypoints2d_mask": np.ones(j, np.uint8),
        "keypoints3d": k3,
        "keypoints3d_mask": np.ones(j, np.uint8),
        "bbox_xywh": xywh,
        "image_path": people.image,
        "image_width": people.image_width,
        "image_height": people.image_height,
        "dataset": people.dataset,
        "split": people.split,
        "person": people.person,
        "source_format": people.source_format,
        "source_row": people.source_row,
        "source_image_id": people.source_image_id,
        "source_annotation_id": people.source_annotation_id,
        "match_distance": people.match_distance.astype(np.float32),
        "error_estimate_mm": people.error_estimate.astype(np.float32),
        "joint_names": np.asarray(info["joint_names"], dtype=str),
        "bones": np.asarray(info["bones"], np.int64).reshape(-1, 2),
        "flip_indices": np.asarray(info["flip_indices"], np.int64),
        "flip_pairs": np.asarray(info["flip_pairs"], np.int64).reshape(-1, 2),
        "meta": np.asarray(json.dumps(meta, allow_nan=False)),
    }


def write_npz(path: str | Path, people: People, skeleton: Skeleton, provenance: dict[str, Any]) -> None:
    """Write the arrays of `people` to `path` (compressed .npz) atomically (temporary file, then rename)."""
    arrays = npz_arrays(people, skeleton, provenance)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:  # a file object: numpy adds no ".npz" suffix
        np.savez_compressed(f, **arrays)
