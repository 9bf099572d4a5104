"""annotate -> shards with splits and source ids -> export (COCO, mmpose, npz), read back with json/numpy
and compared with the shards; the shards' array reader; the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from cli.main import app
from posebank.annotate import AnnotateConfig, annotate
from posebank.annotate.shards_reader import open_annotations
from posebank.bank.build import build_bank
from posebank.config import BankConfig, ViewConfig
from posebank.errors import InputError
from posebank.export import ExportConfig, export_annotations
from posebank.provenance import sha256_file
from posebank.shards import SOURCE_ID_COLUMNS, annotations_schema, validate
from posebank.skeleton import get_skeleton

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
DEMO = FIXTURES / "demo" / "cmu"
J13 = get_skeleton("j13")
PX, M = 0.5e-3 + 1e-9, 0.5e-6 + 1e-12  # the JSON exports' rounding: 0.001 px, 1 µm


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small real bank (CMU 09_12, 4 views) and three annotate outputs: COCO val2017 (under its official
    name), the MPII release-structured .mat (train and test images), MPII h5 rows under the name valid.h5."""
    root = tmp_path_factory.mktemp("cmu")
    (root / "subjects" / "09").mkdir(parents=True)
    for f in ("09.asf", "09_12.amc"):
        shutil.copy(DEMO / "subjects" / "09" / f, root / "subjects" / "09")
    bank = tmp_path_factory.mktemp("bank")
    build_bank(BankConfig(sources=(("cmu", str(root)),), out=str(bank), view=ViewConfig(views=4)))
    inputs = tmp_path_factory.mktemp("inputs")
    coco = inputs / "person_keypoints_val2017.json"
    shutil.copy(FIXTURES / "coco" / "mmpose_test_coco.json", coco)
    (inputs / "annot").mkdir()
    h5 = inputs / "annot" / "valid.h5"
    shutil.copy(FIXTURES / "mpii" / "valid_a_first40.h5", h5)
    shutil.copy(FIXTURES / "mpii" / "valid_a_first40_images.txt", inputs / "annot" / "valid_images.txt")
    out = tmp_path_factory.mktemp("annotations")
    runs = {"coco": ("coco", coco), "mpii_mat": ("mpii", FIXTURES / "mpii" / "mpii_release_quirks.mat"),
            "mpii_h5": ("mpii", h5)}  # fmt: skip
    for name, (dataset, file) in runs.items():
        annotate(AnnotateConfig(label_mode="fused-fit", dataset=dataset, annotation_file=str(file), bank=str(bank), out=str(out / name), k=3))
    return {"bank": bank, "coco_json": coco, "h5": h5, **{name: out / name for name in runs}}


def _table(folder: Path):
    return pq.read_table(sorted((folder / "annotations").glob("*.parquet"))[0])


def test_splits_come_from_the_input(outputs: dict[str, Path]) -> None:
    assert set(_table(outputs["coco"]).column("split").to_pylist()) == {"val"}  # person_keypoints_val2017
    assert set(_table(outputs["mpii_h5"]).column("split").to_pylist()) == {"val"}  # annot/valid.h5
    mat = _table(outputs["mpii_mat"]).column("split").to_pylist()
    assert mat == ["train"] * 4 + ["test"] * 2  # RELEASE.img_train 1 / 0


def test_split_option_overrides(outputs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "train"
    annotate(AnnotateConfig(label_mode="fused-fit", dataset="coco", annotation_file=str(outputs["coco_json"]), bank=str(outputs["bank"]),
                            out=str(out), k=3, split="train"))  # fmt: skip
    assert set(_table(out).column("split").to_pylist()) == {"train"}


def test_source_ids_join_back_to_the_source(outputs: dict[str, Path]) -> None:
    import h5py

    coco = _table(outputs["coco"])
    validate(coco, annotations_schema(13), path="coco")
    doc = json.loads(outputs["coco_json"].read_text())
    people = [a for a in doc["annotations"] if a["category_id"] == 1]
    assert coco.column("source_annotation_id").to_pylist() == [a["id"] for a in people]
    assert coco.column("source_image_id").to_pylist() == [a["image_id"] for a in people]
    assert coco.column("source_format").to_pylist() == ["coco_json"] * len(people)
    names = {im["id"]: im["file_name"] for im in doc["images"]}
    assert coco.column("image").to_pylist() == [names[a["image_id"]] for a in people]
    mat = _table(outputs["mpii_mat"])
    # (annolist index, annorect index): image 0 holds two people, image 3 (a test image) two.
    assert mat.column("source_image_id").to_pylist() == [0, 0, 1, 2, 3, 3]
    assert mat.column("person").to_pylist()[:2] == [0, 1]
    assert set(mat.column("source_annotation_id").to_pylist()) == {None}
    h5 = _table(outputs["mpii_h5"])
    with h5py.File(outputs["h5"], "r") as f:
        index = f["index"][()].astype(int).tolist()
    assert h5.column("source_image_id").to_pylist() == index
    assert h5.column("source_row").to_pylist() == list(range(40))


def test_reader_gives_pose_arrays(outputs: dict[str, Path]) -> None:
    shards = open_annotations(outputs["coco"])
    pose_2d, pose_3d, visible, source = shards.poses(("pose_2d", "pose_3d", "visible", "source_pose_2d"))
    table = _table(outputs["coco"])
    n = table.num_rows
    assert pose_2d.shape == (n, 13, 2) and pose_3d.shape == (n, 13, 3) and visible.shape == (n, 13)
    assert source.shape == (n, 17, 2) and pose_2d.dtype == np.float32
    np.testing.assert_array_equal(pose_2d.reshape(n, -1), np.stack(table.column("pose_2d").to_pylist()))
    unmatched = np.array([v is None for v in table.column("pose_3d").to_pylist()])
    assert unmatched.sum() == 2 and np.isnan(pose_3d[unmatched]).all() and np.isfinite(pose_3d[~unmatched]).all()
    (val,) = shards.poses(("pose_2d",), split="val")
    (none,) = shards.poses(("pose_2d",), split="train")
    assert len(val) == n and none.shape == (0, 13, 2)
    with pytest.raises(InputError, match="no column"):
        shards.poses(("nope",))


def _shard_arrays(folder: Path) -> dict[str, np.ndarray]:
    names = ("pose_2d", "pose_3d", "visible", "occluded", "box_full", *SOURCE_ID_COLUMNS[1:], "person")
    return dict(zip(names, open_annotations(folder).poses(names)))


def _provenance_ok(prov: dict, folders: list[Path]) -> None:
    files = [f for entry in prov["inputs"] for f in entry["files"]]
    expected = [p for d in folders for p in sorted((d / "annotations").glob("*.parquet"))]
    assert [Path(f["file"]) for f in files] == expected
    assert all(f["sha256"] == sha256_file(f["file"]) for f in files)
    assert prov["version"] and prov["inputs"][0]["annotation_file"]["sha256"]


def _skeleton_ok(sk: dict) -> None:
    assert sk["joint_names"] == list(J13.joint_names)
    assert [tuple(b) for b in sk["bones"]] == list(J13.bones)
    assert sk["flip_indices"] == list(J13.flip_permutation)
    assert [11, 10] not in sk["flip_pairs"] and [10, 11] in sk["flip_pairs"]  # shoulders, each pair once


def test_coco_export_round_trip(outputs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "coco.json"
    report = export_annotations(ExportConfig(annotations=(str(outputs["coco"]),), format="coco", out=str(out)))
    doc = json.loads(out.read_text())
    ref = _shard_arrays(outputs["coco"])
    n = len(ref["pose_2d"])
    assert report.people == n == len(doc["annotations"]) and len(doc["images"]) == 4
    kp = np.array([a["keypoints"] for a in doc["annotations"]]).reshape(n, 13, 3)
    vis, occ = ref["visible"], ref["occluded"]
    np.testing.assert_array_equal(kp[..., 2], np.where(vis, np.where(occ, 1, 2), 0))
    np.testing.assert_allclose(kp[..., :2][vis], ref["pose_2d"][vis], rtol=0, atol=PX)
    assert (kp[..., :2][~vis] == 0).all()
    done = np.array([a["keypoints_completed"] for a in doc["annotations"]]).reshape(n, 13, 3)
    finite = np.isfinite(ref["pose_2d"]).all(-1)
    np.testing.assert_allclose(done[..., :2][finite], ref["pose_2d"][finite], rtol=0, atol=PX)
    np.testing.assert_array_equal(done[..., 2], np.where(vis, 2, np.where(finite, 1, 0)))
    for a, p3 in zip(doc["annotations"], ref["pose_3d"]):
        if np.isnan(p3).any():
            assert a["keypoints_3d"] is None and "too_few_joints" in a["flags"]
        else:
            np.testing.assert_allclose(np.array(a["keypoints_3d"]).reshape(13, 3), p3, rtol=0, atol=M)
    # COCO's own ids survive: annotation id, image id, file name.
    source = json.loads(outputs["coco_json"].read_text())
    people = [a for a in source["annotations"] if a["category_id"] == 1]
    assert [a["id"] for a in doc["annotations"]] == [a["id"] for a in people]
    assert [a["image_id"] for a in doc["annotations"]] == [a["image_id"] for a in people]
    assert {im["id"]: im["file_name"] for im in doc["images"]} == {im["id"]: im["file_name"] for im in source["images"]}
    box = ref["box_full"].astype(np.float64)
    xywh = np.c_[box[:, :2], box[:, 2:] - box[:, :2]]
    known = np.isfinite(box).all(1)  # the two people without keypoints have no box: [0, 0, 0, 0]
    assert known.sum() == n - 2
    np.testing.assert_allclose(np.array([a["bbox"] for a in doc["annotations"]]), np.where(known[:, None], xywh, 0.0),
                               rtol=0, atol=2 * PX)  # fmt: skip
    # The annotated joints are the source file's own numbers (COCO's integers), joint by joint, by name.
    coco_names = source["categories"][0]["keypoints"]
    for a, src in zip(doc["annotations"], people):
        for j, name in enumerate(J13.joint_names):
            if name in coco_names:
                k = coco_names.index(name)
                x, y, v = src["keypoints"][3 * k : 3 * k + 3]
                assert a["keypoints"][3 * j : 3 * j + 3] == ([x, y, v] if v > 0 else [0, 0, 0])
    (cat,) = doc["categories"]
    assert cat["keypoints"] == list(J13.joint_names) and [tuple(np.subtract(b, 1)) for b in cat["skeleton"]] == list(J13.bones)
    _skeleton_ok(doc["posebank"]["skeleton"])
    _provenance_ok(doc["posebank"]["provenance"], [outputs["coco"]])
    assert not list(tmp_path.glob(".*tmp"))  # written through a temporary file, renamed


def test_mmpose_export_round_trip(outputs: dict[str, Path], tmp_path: Path) -> None:
    folders = [outputs["mpii_mat"], outputs["mpii_h5"]]
    out = tmp_path / "mmpose.json"
    export_annotations(ExportConfig(annotations=tuple(map(str, folders)), format="mmpose", out=str(out)))
    doc = json.loads(out.read_text())
    refs = [_shard_arrays(f) for f in folders]
    ref = {k: np.concatenate([r[k] for r in refs]) for k in refs[0]}
    items = doc["data_list"]
    assert len(items) == len(ref["pose_2d"]) == 46
    kp = np.array([i["keypoints"] for i in items])[:, 0]
    vis = np.array([i["keypoints_visible"] for i in items])[:, 0].astype(bool)
    np.testing.assert_array_equal(vis, ref["visible"])
    finite = np.isfinite(ref["pose_2d"]).all(-1)
    np.testing.assert_allclose(kp[finite], ref["pose_2d"][finite], rtol=0, atol=PX)
    k3 = np.array([i["keypoints_3d"] for i in items])[:, 0]
    has_3d = np.isfinite(ref["pose_3d"]).all(axis=(1, 2))
    np.testing.assert_allclose(k3[has_3d], ref["pose_3d"][has_3d], rtol=0, atol=M)
    assert [i["split"] for i in items] == ["train"] * 4 + ["test"] * 2 + ["val"] * 40
    assert [i["source_image_id"] for i in items] == ref["source_image_id"].tolist()
    np.testing.assert_allclose([i["bbox"][0] for i in items], np.where(np.isfinite(ref["box_full"]), ref["box_full"], 0),
                               rtol=0, atol=PX)  # fmt: skip
    # Two MPII files share annolist indices: image ids are renumbered, one id per image name.
    by_name = {}
    for i in items:
        by_name.setdefault((i["dataset"], i["img_path"]), set()).add(i["img_id"])
    assert all(len(v) == 1 for v in by_name.values()) and len({min(v) for v in by_name.values()}) == len(by_name)
    meta = doc["metainfo"]
    assert meta["keypoint_names"] == list(J13.joint_names) and meta["flip_indices"] == list(J13.flip_permutation)
    assert meta["keypoint_info"]["0"]["swap"] == "left_ankle" and meta["keypoint_info"]["12"]["swap"] == ""
    assert [tuple(l) for l in meta["skeleton_links"]] == list(J13.bones)
    _skeleton_ok(meta["posebank"]["skeleton"])
    _provenance_ok(meta["posebank"]["provenance"], folders)


def test_npz_export_round_trip(outputs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "people.npz"
    export_annotations(ExportConfig(annotations=(str(outputs["coco"]),), format="npz", out=str(out)))
    ref = _shard_arrays(outputs["coco"])
    with np.load(out) as z:  # no pickle needed
        data = {k: z[k] for k in z.files}
    n = len(ref["pose_2d"])
    assert data["keypoints2d"].shape == (n, 13, 3) and data["keypoints3d"].shape == (n, 13, 4)
    finite = np.isfinite(ref["pose_2d"]).all(-1)
    np.testing.assert_array_equal(data["keypoints2d"][..., :2][finite], ref["pose_2d"][finite])
    np.testing.assert_array_equal(data["keypoints2d"][..., 2], ref["visible"].astype(np.float32))
    np.testing.assert_array_equal(data["keypoints2d_completed"], ~ref["visible"] & finite)
    has_3d = np.isfinite(ref["pose_3d"]).all(axis=(1, 2))
    np.testing.assert_array_equal(data["keypoints3d"][has_3d, :, :3], ref["pose_3d"][has_3d])
    assert (data["keypoints3d"][has_3d, :, 3] == 1).all() and (data["keypoints3d"][~has_3d] == 0).all()
    assert data["keypoints2d_mask"].tolist() == [1] * 13
    np.testing.assert_array_equal(data["source_annotation_id"], ref["source_annotation_id"])
    np.testing.assert_array_equal(data["source_image_id"], ref["source_image_id"])
    box = ref["box_full"]
    known = np.isfinite(box).all(1)
    xywh = np.where(known[:, None], np.c_[box[:, :2], box[:, 2:] - box[:, :2]], 0.0)
    np.testing.assert_allclose(data["bbox_xywh"][:, :4], xywh, rtol=1e-6)
    np.testing.assert_array_equal(data["bbox_xywh"][:, 4], known.astype(np.float32))
    assert data["image_path"].tolist() == _table(outputs["coco"]).column("image").to_pylist()
    assert data["joint_names"].tolist() == list(J13.joint_names)
    assert [tuple(p) for p in data["flip_pairs"]] == [(i, f) for i, f in enumerate(J13.flip_permutation) if i < f]
    meta = json.loads(str(data["meta"]))
    _skeleton_ok(meta["skeleton"])
    _provenance_ok(meta["provenance"], [outputs["coco"]])


def test_cli_export_and_errors(outputs: dict[str, Path], tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "val.npz"
    result = runner.invoke(app, ["export", str(outputs["mpii_mat"]), "--format", "npz", "--out", str(out), "--split", "test"])
    assert result.exit_code == 0, result.output
    assert "2 people in 1 images" in result.output
    with np.load(out) as z:
        assert z["split"].tolist() == ["test", "test"] and z["source_image_id"].tolist() == [3, 3]
    bad = runner.invoke(app, ["export", str(outputs["mpii_mat"]), "--format", "coco", "--out", str(tmp_path / "x.json"),
                              "--split", "val"])  # fmt: skip
    assert bad.exit_code == 1 and "no people of split 'val'" in bad.output and not (tmp_path / "x.json").exists()
    bad = runner.invoke(app, ["export", str(outputs["bank"]), "--format", "coco", "--out", str(tmp_path / "x.json")])
    assert bad.exit_code == 1 and "not annotation shards" in bad.output
    bad = runner.invoke(app, ["export", str(outputs["coco"]), "--format", "yaml", "--out", str(tmp_path / "x.json")])
    assert bad.exit_code == 1 and "unknown format" in bad.output
    bad = runner.invoke(app, ["export", str(outputs["coco"]), "--format", "coco", "--out", str(tmp_path)])
    assert bad.exit_code == 1 and "is a folder" in bad.output


def test_annotate_records_its_images_root_for_train(outputs: dict[str, Path], tmp_path: Path) -> None:
    """Each dataset keeps its own image folder: train --data mpii --data coco finds both without
    --images-root, and a split that is absent is named with the splits present and the option."""
    from lcrnet.data import ShardSource, no_split_message, resolve_sources

    images = tmp_path / "val2017"
    images.mkdir()
    out = tmp_path / "coco"
    annotate(AnnotateConfig(label_mode="fused-fit", dataset="coco", annotation_file=str(outputs["coco_json"]), bank=str(outputs["bank"]),
                            out=str(out), k=3, images_root=str(images)))  # fmt: skip
    (source,) = resolve_sources([out])
    assert source.images_root == images.resolve()
    export_annotations(ExportConfig(annotations=(str(out),), format="mmpose", out=str(tmp_path / "m.json")))
    meta = json.loads((tmp_path / "m.json").read_text())["metainfo"]
    assert meta["posebank"]["provenance"]["inputs"][0]["images_root"] == str(images.resolve())
    with pytest.raises(InputError, match="do not name their images root"):
        resolve_sources([outputs["mpii_h5"]])  # annotated without --images-root
    message = no_split_message([ShardSource(out, images), ShardSource(outputs["mpii_mat"], images)], "train2017")
    assert "no images of split 'train2017'" in message and "splits present: test, train, val" in message
    assert "--split" in message


def test_zero_based_source_indices_are_not_coco_ids(outputs: dict[str, Path], tmp_path: Path) -> None:
    """MPII's annolist index starts at 0: COCO ids are renumbered from 1, the index stays in source_image_id."""
    out = tmp_path / "mpii.json"
    export_annotations(ExportConfig(annotations=(str(outputs["mpii_mat"]),), format="coco", out=str(out)))
    doc = json.loads(out.read_text())
    assert [im["id"] for im in doc["images"]] == [1, 2, 3, 4]
    assert [im["source_image_id"] for im in doc["images"]] == [0, 1, 2, 3]
    assert [a["image_id"] for a in doc["annotations"]] == [1, 1, 2, 3, 4, 4]
    assert [a["id"] for a in doc["annotations"]] == [1, 2, 3, 4, 5, 6]
    assert [(a["source_image_id"], a["person"]) for a in doc["annotations"]][:2] == [(0, 0), (0, 1)]


def test_shards_without_source_ids_still_verify(outputs: dict[str, Path]) -> None:
    """Shards written before the source-id columns existed stay valid; the new columns are typed when present."""
    from posebank.verify import verify_output

    report = verify_output(outputs["coco"])
    assert not report.problems, report.problems
    table = _table(outputs["coco"])
    old = table.drop_columns(list(SOURCE_ID_COLUMNS))
    validate(old, annotations_schema(13), path="old", optional=SOURCE_ID_COLUMNS)
    with pytest.raises(InputError, match="missing column 'source_format'"):
        validate(old, annotations_schema(13), path="old")


def test_export_reads_shards_without_source_ids(outputs: dict[str, Path], tmp_path: Path) -> None:
    table = _table(outputs["coco"])
    old = tmp_path / "old" / "part-00000.parquet"
    old.parent.mkdir()
    pq.write_table(table.drop_columns(list(SOURCE_ID_COLUMNS)), old)
    out = tmp_path / "old.npz"
    export_annotations(ExportConfig(annotations=(str(old.parent),), format="npz", out=str(out)))
    with np.load(out) as z:
        assert (z["source_image_id"] == -1).all() and (z["source_annotation_id"] == -1).all()
        assert z["keypoints2d"].shape == (table.num_rows, 13, 3)


def test_a_renamed_file_is_another_job(outputs: dict[str, Path], tmp_path: Path) -> None:
    """valid.h5 copied as train.h5 has the same sha256 but other splits: its shards are not reused."""
    from posebank.errors import OutputConflictError

    annot = tmp_path / "annot"
    annot.mkdir()
    for name in ("train.h5", "train_images.txt"):
        shutil.copy(outputs["h5"].parent / name.replace("train", "valid"), annot / name)
    out = tmp_path / "mpii"
    shutil.copytree(outputs["mpii_h5"], out)
    config = AnnotateConfig(label_mode="fused-fit", dataset="mpii", annotation_file=str(annot / "train.h5"), bank=str(outputs["bank"]),
                            out=str(out), k=3)  # fmt: skip
    with pytest.raises(OutputConflictError, match="splits"):
        annotate(config)
    annotate(config, overwrite=True)
    assert set(_table(out).column("split").to_pylist()) == {"train"}
