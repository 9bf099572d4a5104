"""Annotation shards -> a COCO person-keypoints JSON (images, annotations, categories).

`keypoints` are COCO's [x, y, v] * J in the project's skeleton (j13/j17 order, not COCO's 17): v 2 =
annotated and not occluded, 1 = annotated and occluded (the source's flag), 0 = not annotated, with
x = y = 0 as COCO writes it. What posebank adds rides in extra fields of each annotation, which COCO
tools ignore: `keypoints_completed` (the completed 2D, [x, y, c] * J, c 1 where the joint was completed
by the pseudo-3D match, 2 where annotated, 0 where neither), `keypoints_3d` ([X, Y, Z] * J metres, null
when unmatched), `flags`, `match_distance`, `error_estimate_mm`, and the source ids. `bbox` is the completed
pose's box with its 10% margin, [x, y, w, h]. The category holds the skeleton's keypoint names and its
bones (1-based index pairs, as COCO's), and the file's `posebank` entry the skeleton, units and provenance.
Pixels are written to 0.001 px and metres to 1 µm (people.PX_DECIMALS, M_DECIMALS).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..skeleton import Skeleton
from .people import (
    People, annotation_ids, image_ids, json_m, json_px, skeleton_info, units_and_frames, write_json,
)  # fmt: skip


def _none_if_nan(v: float) -> float | None:
    return None if not np.isfinite(v) else float(v)


def _triplets(xy: np.ndarray, flag: np.ndarray) -> list[float | int]:
    """COCO's flat [x, y, v] * J: coordinates as floats, the flag as an integer."""
    return [value for (x, y), f in zip(xy.tolist(), flag.tolist()) for value in (x, y, int(f))]


def coco_document(people: People, skeleton: Skeleton, provenance: dict[str, Any]) -> dict[str, Any]:
    """The COCO keypoints document of `people`; its "annotations" is an iterator (people.write_json streams it)."""
    img_ids, img_ids_kept = image_ids(people)
    ann_ids, ann_ids_kept = annotation_ids(people)
    images: dict[int, dict[str, Any]] = {}
    for i in range(len(people)):
        iid = int(img_ids[i])
        if iid not in images:
            images[iid] = {
                "id": iid, "file_name": str(people.image[i]),
                "width": int(people.image_width[i]) if people.image_width[i] >= 0 else None,
                "height": int(people.image_height[i]) if people.image_height[i] >= 0 else None,
                "dataset": str(people.dataset[i]), "split": str(people.split[i]),
                "source_image_id": int(people.source_image_id[i]) if people.source_image_id[i] >= 0 else None,
            }  # fmt: skip
    visible, occluded = people.visible, people.occluded
    v = np.where(visible, np.where(occluded, 1, 2), 0)
    xy = np.where(visible[..., None], json_px(people.pose_2d), 0.0)
    done = np.isfinite(people.pose_2d).all(-1)
    c = np.where(visible, 2, np.where(people.completed, 1, 0))
    completed_xy = np.where(done[..., None], json_px(people.pose_2d), 0.0)
    has_box = np.isfinite(people.box_full).all(1)
    box = json_px(people.box_full)
    xywh = np.round(np.c_[box[:, :2], box[:, 2:] - box[:, :2]], 3)

    def annotation(i: int) -> dict[str, Any]:
        has_3d = bool(np.isfinite(people.pose_3d[i]).all())
        return {
            "id": int(ann_ids[i]), "image_id": int(img_ids[i]), "category_id": 1,
            "keypoints": _triplets(xy[i], v[i]),
            "num_keypoints": int(visible[i].sum()),
            "bbox": xywh[i].tolist() if has_box[i] else [0.0, 0.0, 0.0, 0.0],
            "area": round(float(xywh[i, 2] * xywh[i, 3]), 3) if has_box[i] else 0.0,
            "iscrowd": 0,
            "keypoints_completed": _triplets(completed_xy[i], c[i]),
            "keypoints_3d": json_m(people.pose_3d[i]).reshape(-1).tolist() if has_3d else None,
            "flags": people.flags[i],
            "match_distance": _none_if_nan(people.match_distance[i]),
            "error_estimate_mm": _none_if_nan(people.error_estimate[i]),
            "dataset": str(people.dataset[i]), "split": str(people.split[i]), "person": int(people.person[i]),
            "source_format": str(people.source_format[i]) or None,
            "source_row": int(people.source_row[i]) if people.source_row[i] >= 0 else None,
            "source_annotation_id": int(people.source_annotation_id[i]) if people.source_annotation_id[i] >= 0 else None,
            "source_image_id": int(people.source_image_id[i]) if people.source_image_id[i] >= 0 else None,
        }  # fmt: skip

    info = skeleton_info(skeleton)
    return {
        "info": {"description": f"posebank annotations ({skeleton.name}, pseudo-3D)", "version": provenance["version"]},
        "images": list(images.values()),
        "annotations": (annotation(i) for i in range(len(people))),  # streamed: COCO train has 260k people
        "categories": [{
            "id": 1, "name": "person", "supercategory": "person",
            "keypoints": info["joint_names"],
            "skeleton": [[a + 1, b + 1] for a, b in info["bones"]],  # COCO's skeleton is 1-based
        }],  # fmt: skip
        "posebank": {
            "skeleton": info,
            "units": units_and_frames(people),
            "ids": {"image_id": "source" if img_ids_kept else "renumbered 1.. (source ids in source_image_id)",
                    "annotation_id": "source" if ann_ids_kept else "renumbered 1.. (source ids in source_*)"},
            "provenance": provenance,
        },
    }


def write_coco(path: str | Path, people: People, skeleton: Skeleton, provenance: dict[str, Any]) -> None:
    """Write the COCO document of `people` to `path` atomically (temporary file, then rename)."""
    write_json(path, coco_document(people, skeleton, provenance))
