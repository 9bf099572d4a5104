"""read_annotations picks the reader by dataset and suffix; image sizes come from image headers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mpii_release_fixture import FIXTURE

from posebank.datasets2d import PersonAnnotations, read_annotations
from posebank.datasets2d.annotations import build_annotations
from posebank.errors import InputError


@pytest.mark.parametrize(
    ("dataset", "rel", "source_format"),
    [
        ("mpii", "mpii/mmpose_test_mpii.json", "mpii_json"),
        ("mpii", "mpii/valid_a_first40.h5", "mpii_h5"),
        ("mpii", "mpii/mpii_release_quirks.mat", "mpii_release_mat"),
        ("coco", "coco/mmpose_test_coco.json", "coco_json"),
    ],
)
def test_dispatch_by_dataset_and_suffix(fixtures_dir: Path, dataset: str, rel: str, source_format: str):
    ann = read_annotations(dataset, fixtures_dir / rel)
    assert isinstance(ann, PersonAnnotations) and ann.source_format == source_format and ann.dataset == dataset


def test_dispatch_lsp(shared_data: Path):
    assert read_annotations("lsp", shared_data / "lsp" / "lspet_joints.mat").source_format == "lspet_mat"


def test_dispatch_refuses_unknown_pairs(tmp_path: Path):
    with pytest.raises(InputError, match="no reader for dataset 'coco' with suffix '.mat'"):
        read_annotations("coco", tmp_path / "x.mat")
    with pytest.raises(InputError, match="no reader for dataset 'h36m'"):
        read_annotations("h36m", tmp_path / "x.json")


def test_options_reach_the_reader(fixtures_dir: Path):
    ann = read_annotations("mpii", fixtures_dir / "mpii" / "mmpose_test_mpii.json", split="valid")
    assert set(ann.split) == {"valid"}
    with pytest.raises(TypeError):
        read_annotations("coco", fixtures_dir / "coco" / "mmpose_test_coco.json", image_list=fixtures_dir)


def test_image_sizes_from_headers(tmp_path: Path):
    Image = pytest.importorskip("PIL.Image")
    Image.new("RGB", (64, 48)).save(tmp_path / "005808361.jpg")  # one of the two images; the other is absent
    ann = read_annotations("mpii", FIXTURE, images_root=tmp_path)
    first = ann.image == "005808361.jpg"
    assert (ann.image_width[first] == 64).all() and (ann.image_height[first] == 48).all()
    assert (ann.image_width[~first] == -1).all()  # missing file: unknown, not guessed
    assert read_annotations("mpii", FIXTURE).image_width.tolist() == [-1] * len(ann)


def test_subset_and_contract_checks(fixtures_dir: Path):
    ann = read_annotations("coco", fixtures_dir / "coco" / "mmpose_test_coco.json")
    some = ann.subset(ann.num_annotated > 0)
    assert len(some) == 12 and (some.num_annotated > 0).all() and len(some.extras["bbox"]) == 12
    with pytest.raises(ValueError, match="shape"):
        build_annotations(
            dataset="coco", source_format="t", path="p", joint_names=ann.joint_names, occlusion_flag=True,
            split="x", image=["a.jpg"], person=[0], record=[0], pose_2d=np.zeros((1, 17, 2)),
            annotated=np.ones((1, 17), bool), occluded=np.zeros((1, 17), bool), head_size=np.zeros(2),
        )  # fmt: skip
