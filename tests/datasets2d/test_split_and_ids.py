"""Splits read from the input (so annotate -> train needs no --split) and the source ids of every reader."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from mpii_release_fixture import FIXTURE
from scipy.io import savemat

from posebank.datasets2d import read_coco, read_lsp, read_mpii_h5, read_mpii_json, read_mpii_release
from posebank.datasets2d._common import split_from_name


@pytest.mark.parametrize(
    ("name", "split"),
    [
        ("train.h5", "train"), ("valid.h5", "val"), ("test.h5", "test"), ("valid_a.h5", "val"),
        ("train.json", "train"), ("valid.json", "val"), ("trainval.json", "trainval"),
        ("mpii_train.json", "train"), ("mpii_val.json", "val"),
        ("person_keypoints_train2017.json", "train"), ("person_keypoints_val2017.json", "val"),
        ("person_keypoints_val2014.json", "val"), ("train2017", "train"), ("coco_wholebody_train_v1.0.json", "train"),
        ("image_info_test-dev2017.json", "test-dev"),
        # No split word at the end of the name: nothing is guessed.
        ("mmpose_test_mpii.json", None), ("mpii_human_pose_v1_u12_1.mat", None), ("annotations.json", None),
        ("joints.mat", None), ("x", None),
    ],
)  # fmt: skip
def test_split_from_name(name: str, split: str | None) -> None:
    assert split_from_name(name) == split


def test_mpii_h5_and_json_take_the_split_of_their_name(fixtures_dir: Path, tmp_path: Path) -> None:
    h5 = fixtures_dir / "mpii" / "valid_a_first40.h5"
    assert set(read_mpii_h5(h5).split) == {"unknown"}  # the name ends in "first40", not a split
    (tmp_path / "annot").mkdir()
    for stem, split in (("train", "train"), ("valid", "val"), ("valid_a", "val")):
        shutil.copy(h5, tmp_path / "annot" / f"{stem}.h5")
        shutil.copy(fixtures_dir / "mpii" / "valid_a_first40_images.txt", tmp_path / "annot" / f"{stem}_images.txt")
        assert set(read_mpii_h5(tmp_path / "annot" / f"{stem}.h5").split) == {split}
    train = tmp_path / "annot" / "train.h5"
    assert set(read_mpii_h5(train, split="valid").split) == {"valid"}  # given: kept as written
    js = fixtures_dir / "mpii" / "mmpose_test_mpii.json"
    assert set(read_mpii_json(js).split) == {"unknown"}  # "test" inside the name is not a split
    shutil.copy(js, tmp_path / "annot" / "valid.json")
    assert set(read_mpii_json(tmp_path / "annot" / "valid.json").split) == {"val"}


def test_coco_ids(fixtures_dir: Path) -> None:
    path = fixtures_dir / "coco" / "mmpose_test_coco.json"
    doc = json.loads(path.read_text())
    people = [a for a in doc["annotations"] if a["category_id"] == 1]
    ids = read_coco(path).source_ids()
    assert ids["annotation_id"].tolist() == [a["id"] for a in people]
    assert ids["image_id"].tolist() == [a["image_id"] for a in people]
    assert ids["row"].tolist() == list(range(len(people)))


def test_mpii_release_and_h5_ids(fixtures_dir: Path) -> None:
    release = read_mpii_release(FIXTURE)
    ids = release.source_ids()
    # The annolist index names the image; the annorect index (person) names the person in it.
    assert ids["image_id"].tolist() == [0, 0, 1, 2, 3, 3] and release.person.tolist()[:2] == [0, 1]
    assert (ids["annotation_id"] == -1).all()
    h5_path = fixtures_dir / "mpii" / "valid_a_first40.h5"
    h5 = read_mpii_h5(h5_path)
    with h5py.File(h5_path, "r") as f:
        index, person = f["index"][()], f["person"][()]
    assert h5.source_ids()["image_id"].tolist() == index.astype(np.int64).tolist()
    assert h5.person.tolist() == person.astype(int).tolist()
    # The HRNet JSON has no annolist index: its row is the only id.
    js = read_mpii_json(fixtures_dir / "mpii" / "mmpose_test_mpii.json").source_ids()
    assert (js["image_id"] == -1).all() and js["row"].tolist() == [0, 1, 2, 3, 4]


def test_lsp_ids_are_the_image_index(tmp_path: Path) -> None:
    joints = np.zeros((14, 3, 4))
    joints[:, :2, :] = 10.0
    joints[:, 2, :] = 1
    savemat(str(tmp_path / "joints.mat"), {"joints": joints})
    lspet = read_lsp(tmp_path / "joints.mat")
    assert lspet.source_ids()["image_id"].tolist() == [0, 1, 2, 3]
    assert lspet.image.tolist()[0] == "im00001.jpg" and set(lspet.split) == {"train"}
