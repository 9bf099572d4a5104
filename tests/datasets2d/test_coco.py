"""COCO person_keypoints reader: v semantics, zero-keypoint people kept, left/right names, bad inputs."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from posebank.datasets2d import read_coco
from posebank.errors import InputError


@pytest.fixture(scope="module")
def coco_doc(fixtures_dir: Path) -> dict:
    return json.loads((fixtures_dir / "coco" / "mmpose_test_coco.json").read_text())


@pytest.fixture(scope="module")
def coco(fixtures_dir: Path):
    return read_coco(fixtures_dir / "coco" / "mmpose_test_coco.json")


def test_v_flags_and_people_without_keypoints(coco, coco_doc):
    anns = coco_doc["annotations"]
    assert len(coco) == len(anns) == 14 and coco.source_format == "coco_json" and coco.occlusion_flag
    kp = np.asarray([a["keypoints"] for a in anns], dtype=float).reshape(14, 17, 3)
    np.testing.assert_array_equal(coco.source_annotated, kp[..., 2] > 0)
    np.testing.assert_array_equal(coco.source_occluded, kp[..., 2] == 1)
    assert coco.source_occluded.any()
    np.testing.assert_array_equal(coco.num_annotated, [a["num_keypoints"] for a in anns])
    zero = [i for i, a in enumerate(anns) if a["num_keypoints"] == 0]
    assert len(zero) == 2  # kept, with no joints
    assert np.isnan(coco.source_pose_2d[zero]).all()
    np.testing.assert_allclose(coco.source_pose_2d[0, 0], [367, 81])


def test_images_persons_and_metadata(coco, coco_doc):
    sizes = {im["id"]: (im["file_name"], im["width"], im["height"]) for im in coco_doc["images"]}
    for i, ann in enumerate(coco_doc["annotations"]):
        name, width, height = sizes[ann["image_id"]]
        assert (coco.image[i], coco.image_width[i], coco.image_height[i]) == (name, width, height)
        assert coco.record[i] == ann["id"]
        np.testing.assert_allclose(coco.extras["bbox"][i], ann["bbox"])
    assert coco.person.tolist()[:4] == [0, 0, 1, 2]  # order among the annotations of the same image
    assert coco.split.tolist() == ["unknown"] * 14
    assert read_coco(Path(coco.path), split="val2017").split[0] == "val2017"
    assert not coco.extras["iscrowd"].any()
    person = coco.person_at(0)
    assert person.image_width == 640 and person.head_box is None


def test_split_from_the_official_file_name(tmp_path: Path, coco_doc):
    """person_keypoints_val2017.json -> "val", _train2017 -> "train": the names train and evaluate look
    for by default (train2017 would leave `posebank train` with no rows of split 'train')."""
    for name, split in (("person_keypoints_val2017.json", "val"), ("person_keypoints_train2017.json", "train")):
        path = tmp_path / name
        path.write_text(json.dumps(coco_doc))
        assert set(read_coco(path).split) == {split}
        assert set(read_coco(path, split="mine").split) == {"mine"}  # an explicit split is kept as given


def test_split_from_the_image_folder(tmp_path: Path, coco_doc):
    """A file whose name says nothing (a custom export) still tells the split by its images' folders."""
    doc = json.loads(json.dumps(coco_doc))
    for k, im in enumerate(doc["images"]):
        im["file_name"] = f"{'train2017' if k % 2 == 0 else 'val2017'}/{im['file_name']}"
    path = tmp_path / "keypoints.json"
    path.write_text(json.dumps(doc))
    coco = read_coco(path)
    expected = ["train" if n.startswith("train2017/") else "val" for n in coco.image]
    assert coco.split.tolist() == expected and set(expected) == {"train", "val"}


def test_left_and_right_names_are_consistent(coco):
    """Loose check that the names follow the body: in most people the person's left shoulder, hip and ear lie
    on the same image side of their right counterparts (whichever way the person faces)."""
    names = coco.joint_names
    pose, ann = coco.source_pose_2d, coco.source_annotated

    def side(part: str) -> np.ndarray:
        l, r = names.index(f"left_{part}"), names.index(f"right_{part}")
        ok = ann[:, l] & ann[:, r]
        return np.where(ok, np.sign(pose[:, l, 0] - pose[:, r, 0]), 0)

    shoulder, hip, ear = side("shoulder"), side("hip"), side("ear")
    both = (shoulder != 0) & (hip != 0)
    assert both.sum() >= 8 and np.mean(shoulder[both] == hip[both]) >= 0.75
    both = (shoulder != 0) & (ear != 0)
    assert both.sum() >= 3 and np.mean(shoulder[both] == ear[both]) >= 0.75


def _write(tmp_path: Path, doc: dict) -> Path:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    return path


def test_bad_inputs_name_the_annotation(tmp_path: Path, coco_doc):
    doc = copy.deepcopy(coco_doc)
    doc["annotations"][2]["keypoints"][3 * 4 + 2] = 3
    with pytest.raises(InputError) as info:
        read_coco(_write(tmp_path, doc))
    assert "visibility flag v is 3" in info.value.message
    assert info.value.record == "annotation id 230195 (image 000000040083.jpg), keypoint right_ear"

    doc = copy.deepcopy(coco_doc)
    doc["annotations"][1]["keypoints"] = doc["annotations"][1]["keypoints"][:-3]
    with pytest.raises(InputError, match=r"keypoints has shape \(48,\)") as info:
        read_coco(_write(tmp_path, doc))
    assert info.value.record == "annotation id 198196"

    doc = copy.deepcopy(coco_doc)
    doc["annotations"][0]["keypoints"][0] = float("nan")
    with pytest.raises(InputError, match="not finite") as info:
        read_coco(_write(tmp_path, doc))
    assert info.value.record.startswith("annotation id 442619")

    doc = copy.deepcopy(coco_doc)
    del doc["annotations"][5]["keypoints"]
    with pytest.raises(InputError, match="lacks keypoints"):
        read_coco(_write(tmp_path, doc))

    doc = copy.deepcopy(coco_doc)
    doc["annotations"][0]["image_id"] = 123456789
    with pytest.raises(InputError, match="image_id 123456789 is not in images"):
        read_coco(_write(tmp_path, doc))

    doc = copy.deepcopy(coco_doc)
    del doc["images"]
    with pytest.raises(InputError, match="missing key.*images"):
        read_coco(_write(tmp_path, doc))

    doc = copy.deepcopy(coco_doc)
    doc["categories"][0]["keypoints"][1], doc["categories"][0]["keypoints"][2] = "right_eye", "left_eye"
    with pytest.raises(InputError, match="differ from manifests/coco.toml"):
        read_coco(_write(tmp_path, doc))


def test_other_categories_are_skipped(tmp_path: Path, coco_doc):
    doc = copy.deepcopy(coco_doc)
    doc["categories"].append({"id": 2, "name": "bicycle"})
    doc["annotations"].append({"id": 1, "image_id": 785, "category_id": 2, "bbox": [0, 0, 1, 1]})
    assert len(read_coco(_write(tmp_path, doc))) == 14


def test_no_person_disappears_in_silence(tmp_path: Path, coco_doc):
    """A category_id written as "1" is the person id; an entry without one, or one that is not an
    object, is an error naming it (they used to be dropped: 13 of 14 people, exit 0)."""
    doc = copy.deepcopy(coco_doc)
    for a in doc["annotations"]:
        a["category_id"] = str(a["category_id"])
    assert len(read_coco(_write(tmp_path, doc))) == len(coco_doc["annotations"]) == 14

    doc = copy.deepcopy(coco_doc)
    del doc["annotations"][3]["category_id"]
    with pytest.raises(InputError, match="lacks category_id") as info:
        read_coco(_write(tmp_path, doc))
    assert info.value.record == f"annotation id {coco_doc['annotations'][3]['id']} (annotations[3])"

    doc = copy.deepcopy(coco_doc)
    doc["annotations"].insert(2, [1, 2, 3])
    with pytest.raises(InputError, match="entry is a list, expected an object") as info:
        read_coco(_write(tmp_path, doc))
    assert info.value.record == "annotations[2]"

    doc = copy.deepcopy(coco_doc)
    doc["annotations"][0]["category_id"] = "person"
    with pytest.raises(InputError, match="category_id 'person' is not an integer id"):
        read_coco(_write(tmp_path, doc))


def test_shared_sample_equals_fixture(shared_data: Path, coco):
    shared = read_coco(shared_data / "coco" / "mmpose_test_coco.json")
    np.testing.assert_array_equal(shared.source_annotated, coco.source_annotated)
    np.testing.assert_array_equal(shared.record, coco.record)


def test_file_without_people(tmp_path: Path, coco_doc):
    doc = copy.deepcopy(coco_doc)
    doc["annotations"] = []
    ann = read_coco(_write(tmp_path, doc))
    assert len(ann) == 0 and ann.source_pose_2d.shape == (0, 17, 2)
