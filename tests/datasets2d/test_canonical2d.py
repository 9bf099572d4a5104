"""Name-based mapping of 2D annotations onto j13/j17 through the manifests, and the manifests themselves."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from posebank.dataset_manifest import load_dataset_manifest
from posebank.datasets2d import read_coco, read_mpii_json, to_canonical_2d
from posebank.datasets2d.annotations import build_annotations
from posebank.skeleton import J13_NAMES, J17_NAMES

DATASETS = ("mpii", "lsp", "coco")


@pytest.mark.parametrize("dataset", DATASETS)
def test_manifest_maps_every_j17_joint_by_source_name(dataset: str):
    manifest = load_dataset_manifest(dataset)
    order = manifest.raw["joint_order"]
    assert len(order) == len(set(order)) == {"mpii": 16, "lsp": 14, "coco": 17}[dataset]
    assert set(manifest.joints) == set(J17_NAMES)
    for name, parts in manifest.joints.items():
        assert set(parts) <= set(order), (name, parts)
    for key in ("title", "url", "licence", "citation", "units", "layout"):
        assert manifest.raw.get(key), key


@pytest.mark.parametrize("dataset", DATASETS)
def test_manifest_checksums_match_the_shared_sample(dataset: str, shared_data: Path):
    for rel, digest in load_dataset_manifest(dataset).sha256.items():
        assert hashlib.sha256((shared_data / dataset / rel).read_bytes()).hexdigest() == digest, rel


def _people(dataset: str, pose: np.ndarray, annotated: np.ndarray, occluded: np.ndarray | None = None):
    """PersonAnnotations of synthetic people in `dataset`'s source joint order."""
    names = tuple(load_dataset_manifest(dataset).raw["joint_order"])
    n = len(pose)
    return build_annotations(
        dataset=dataset, source_format="test", path="synthetic", joint_names=names, occlusion_flag=True,
        split="train", image=[f"{i}.jpg" for i in range(n)], person=np.zeros(n), record=np.arange(n),
        pose_2d=pose, annotated=annotated, occluded=np.zeros_like(annotated) if occluded is None else occluded,
    )  # fmt: skip


def test_mpii_mapping_by_name(fixtures_dir: Path):
    ann = read_mpii_json(fixtures_dir / "mpii" / "mmpose_test_mpii.json")
    src = dict(zip(ann.joint_names, np.moveaxis(ann.source_pose_2d, 1, 0)))
    j13 = to_canonical_2d(ann)  # default j13
    assert j13.joint_names == J13_NAMES and j13.pose_2d.shape == (5, 13, 2)
    c = dict(zip(j13.joint_names, np.moveaxis(j13.pose_2d, 1, 0)))
    np.testing.assert_allclose(c["head"], (src["upper_neck"] + src["head_top"]) / 2)
    np.testing.assert_allclose(c["right_wrist"], src["r_wrist"])
    np.testing.assert_allclose(c["left_shoulder"], src["l_shoulder"])
    j17 = to_canonical_2d(ann, "j17")
    c = dict(zip(j17.joint_names, np.moveaxis(j17.pose_2d, 1, 0)))
    np.testing.assert_allclose(c["spine"], (src["pelvis"] + src["thorax"]) / 2)
    np.testing.assert_allclose(c["neck"], src["upper_neck"])
    # Records 2 and 3 lack their ankles: not visible, NaN; everything else is visible.
    ankles = [j17.joint_names.index("right_ankle"), j17.joint_names.index("left_ankle")]
    assert not j17.visible[2:4, ankles].any() and np.isnan(j17.pose_2d[2:4, ankles]).all()
    assert j17.visible.sum() == 5 * 17 - 4
    with pytest.raises(ValueError, match="unknown skeleton"):
        to_canonical_2d(ann, "j99")


def test_strict_mean_visibility_and_occlusion():
    """MPII head needs both upper_neck and head_top; it is occluded when either is."""
    names = load_dataset_manifest("mpii").raw["joint_order"]
    neck, top = names.index("upper_neck"), names.index("head_top")
    pose = np.tile(np.arange(16, dtype=float)[None, :, None], (3, 1, 2))
    annotated = np.ones((3, 16), dtype=bool)
    annotated[1, top] = False  # person 1: head top missing
    occluded = np.zeros((3, 16), dtype=bool)
    occluded[2, neck] = True  # person 2: upper neck occluded
    canonical = to_canonical_2d(_people("mpii", pose, annotated, occluded))
    head = canonical.joint_names.index("head")
    assert canonical.visible[:, head].tolist() == [True, False, True]
    assert canonical.occluded[:, head].tolist() == [False, False, True]
    assert np.isnan(canonical.pose_2d[1, head]).all()
    np.testing.assert_allclose(canonical.pose_2d[0, head], [(neck + top) / 2] * 2)
    assert not (canonical.occluded & ~canonical.visible).any()


def test_coco_head_is_the_mean_of_the_annotated_face_points():
    names = load_dataset_manifest("coco").raw["joint_order"]
    face = [names.index(n) for n in ("nose", "left_eye", "right_eye", "left_ear", "right_ear")]
    pose = np.zeros((4, 17, 2))
    pose[:, face] = [[100, 50], [110, 40], [90, 40], [125, 45], [75, 45]]
    annotated = np.ones((4, 17), dtype=bool)
    occluded = np.zeros((4, 17), dtype=bool)
    # person 0: all five labelled and visible; person 1: a profile, right eye and right ear unlabelled and the far
    # (left) ear hidden; person 2: only the nose; person 3: all five labelled, all hidden.
    annotated[1, [face[2], face[4]]] = False
    annotated[2, face[1:]] = False
    occluded[3, face] = True
    occluded[1, face[3]] = True  # one hidden part among visible ones: the head itself is still seen
    canonical = to_canonical_2d(_people("coco", pose, annotated, occluded), "j17")
    head = canonical.joint_names.index("head")
    np.testing.assert_allclose(canonical.pose_2d[0, head], [100, 44])  # mean of all five
    np.testing.assert_allclose(canonical.pose_2d[1, head], np.mean([[100, 50], [110, 40], [125, 45]], axis=0))
    assert canonical.visible[:, head].tolist() == [True, True, False, True]  # one point is not enough
    assert canonical.occluded[:, head].tolist() == [False, False, False, True]


def test_coco_derived_and_missing_joints(fixtures_dir: Path):
    ann = read_coco(fixtures_dir / "coco" / "mmpose_test_coco.json")
    canonical = to_canonical_2d(ann, "j17")
    src = dict(zip(ann.joint_names, np.moveaxis(ann.source_pose_2d, 1, 0)))
    c = dict(zip(canonical.joint_names, np.moveaxis(canonical.pose_2d, 1, 0)))
    np.testing.assert_allclose(c["pelvis"], (src["left_hip"] + src["right_hip"]) / 2)
    np.testing.assert_allclose(c["thorax"], (src["left_shoulder"] + src["right_shoulder"]) / 2)
    hips_shoulders = [src[n] for n in ("left_hip", "right_hip", "left_shoulder", "right_shoulder")]
    np.testing.assert_allclose(c["spine"], np.mean(hips_shoulders, axis=0))
    assert not canonical.visible[:, canonical.joint_names.index("neck")].any()  # COCO has no neck
    # People with num_keypoints 0 are kept with nothing visible.
    zero = ann.num_annotated == 0
    assert zero.sum() == 2 and not canonical.visible[zero].any()
    # The real sample: people with 3+ face points get a head near their face points.
    head = canonical.joint_names.index("head")
    assert canonical.visible[:, head].sum() >= 10


def test_source_occlusion_propagates_to_coco_joints(fixtures_dir: Path):
    ann = read_coco(fixtures_dir / "coco" / "mmpose_test_coco.json")
    canonical = to_canonical_2d(ann, "j13")
    for name in ("left_knee", "right_ankle", "left_hip"):
        j, s = canonical.joint_names.index(name), ann.joint_names.index(name)
        np.testing.assert_array_equal(canonical.occluded[:, j], ann.source_occluded[:, s])
        np.testing.assert_array_equal(canonical.visible[:, j], ann.source_annotated[:, s])
