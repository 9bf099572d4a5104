"""Annotation shards -> an mmpose-style JSON: `metainfo` (the skeleton as mmpose's dataset meta) and
`data_list`, one instance per person in mmpose's top-down layout.

metainfo holds the dataset-info keys of an mmpose config (keypoint_info with name / id / color / type /
swap, skeleton_info links, joint_weights, sigmas: empty, as for mmpose's Human3.6M) and what
mmpose.datasets.parse_pose_metainfo derives from them (keypoint_id2name, flip_indices, flip_pairs,
skeleton_links, upper/lower body ids), plus posebank's skeleton, units and provenance. Each instance:
img_id, img_path, width, height, bbox (1, 4) x0 y0 x1 y1 px, bbox_score, num_keypoints, keypoints (1, J, 2)
px (the completed pose: hidden joints from the pseudo-3D match, 0 where a pose could not be completed),
keypoints_visible (1, J) 1 = annotated, keypoints_completed (1, J), keypoints_occluded (1, J),
keypoints_3d (1, J, 3) m and keypoints_3d_visible (1, J) (0 and 0 for unmatched people), category_id,
iscrowd, id, flags, match_distance, error_estimate_mm, dataset, split and the source ids. Pixels are
written to 0.001 px and metres to 1 µm (people.PX_DECIMALS, M_DECIMALS).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..skeleton import Skeleton
from .people import (
    People, annotation_ids, image_ids, json_m, json_px, skeleton_info, units_and_frames, write_json,
)  # fmt: skip

_LEFT, _RIGHT, _CENTRE = [0, 255, 0], [255, 128, 0], [51, 153, 255]  # mmpose's usual limb colours


def _colour(name: str) -> list[int]:
    return _LEFT if name.startswith("left_") else _RIGHT if name.startswith("right_") else _CENTRE


def mmpose_metainfo(skeleton: Skeleton) -> dict[str, Any]:
    """The skeleton as mmpose dataset meta (config keys and the keys parse_pose_metainfo derives)."""
    info = skeleton_info(skeleton)
    names = info["joint_names"]
    lower = set(info["lower_body"]) | {i for i, n in enumerate(names) if n.endswith(("_hip", "pelvis"))}
    flip = info["flip_indices"]
    return {
        "dataset_name": f"posebank_{skeleton.name}",
        "keypoint_info": {
            str(i): {"name": n, "id": i, "color": _colour(n), "type": "lower" if i in lower else "upper",
                     "swap": names[flip[i]] if flip[i] != i else ""}
            for i, n in enumerate(names)
        },  # fmt: skip
        "skeleton_info": {
            str(k): {"link": [names[a], names[b]], "id": k, "color": _colour(names[a])}
            for k, (a, b) in enumerate(info["bones"])
        },
        "joint_weights": [1.0] * len(names),
        "sigmas": [],
        "num_keypoints": len(names),
        "keypoint_names": names,
        "keypoint_id2name": {str(i): n for i, n in enumerate(names)},
        "keypoint_name2id": {n: i for i, n in enumerate(names)},
        "flip_indices": flip,
        "flip_pairs": info["flip_pairs"],
        "skeleton_links": info["bones"],
        "upper_body_ids": [i for i in range(len(names)) if i not in lower],
        "lower_body_ids": sorted(lower),
    }


def mmpose_document(people: People, skeleton: Skeleton, provenance: dict[str, Any]) -> dict[str, Any]:
    """The mmpose-style document of `people`; its "data_list" is an iterator (people.write_json streams it)."""
    img_ids, _ = image_ids(people)
    ann_ids, _ = annotation_ids(people)
    done = np.isfinite(people.pose_2d).all(-1)
    xy = np.where(done[..., None], json_px(people.pose_2d), 0.0)
    j = people.visible.shape[1]

    def instance(i: int) -> dict[str, Any]:
        has_3d = bool(np.isfinite(people.pose_3d[i]).all())
        return {
            "id": int(ann_ids[i]), "img_id": int(img_ids[i]), "img_path": str(people.image[i]),
            "width": int(people.image_width[i]) if people.image_width[i] >= 0 else None,
            "height": int(people.image_height[i]) if people.image_height[i] >= 0 else None,
            "bbox": [json_px(people.box_full[i]).tolist()], "bbox_score": [1.0],
            "num_keypoints": int(people.visible[i].sum()),
            "keypoints": [xy[i].tolist()],
            "keypoints_visible": [people.visible[i].astype(np.float64).tolist()],
            "keypoints_completed": [people.completed[i].astype(np.float64).tolist()],
            "keypoints_occluded": [people.occluded[i].astype(np.float64).tolist()],
            "keypoints_3d": [json_m(people.pose_3d[i]).tolist() if has_3d else [[0.0] * 3] * j],
            "keypoints_3d_visible": [[1.0 if has_3d else 0.0] * j],
            "category_id": 1, "iscrowd": 0, "flags": people.flags[i],
            "match_distance": float(people.match_distance[i]) if np.isfinite(people.match_distance[i]) else None,
            "error_estimate_mm": float(people.error_estimate[i]) if np.isfinite(people.error_estimate[i]) else None,
            "dataset": str(people.dataset[i]), "split": str(people.split[i]), "person": int(people.person[i]),
            "source_format": str(people.source_format[i]) or None,
            "source_row": int(people.source_row[i]) if people.source_row[i] >= 0 else None,
            "source_image_id": int(people.source_image_id[i]) if people.source_image_id[i] >= 0 else None,
            "source_annotation_id": int(people.source_annotation_id[i]) if people.source_annotation_id[i] >= 0 else None,
        }  # fmt: skip

    metainfo = mmpose_metainfo(skeleton)
    metainfo["posebank"] = {"skeleton": skeleton_info(skeleton), "units": units_and_frames(people),
                            "provenance": provenance}  # fmt: skip
    return {"metainfo": metainfo, "data_list": (instance(i) for i in range(len(people)))}  # streamed


def write_mmpose(path: str | Path, people: People, skeleton: Skeleton, provenance: dict[str, Any]) -> None:
    """Write the mmpose-style document of `people` to `path` atomically (temporary file, then rename)."""
    write_json(path, mmpose_document(people, skeleton, provenance))
