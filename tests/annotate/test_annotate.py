"""`annotate`: masked matching against a real bank, completion, flags, shards, resumption."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from posebank.annotate import FLAG_SWAP, FLAG_TOO_FEW, AnnotateConfig, LifterConfig, annotate, label_people
from posebank.annotate.lifter import stored_lifter, visibility_patterns
from posebank.bank import open_bank
from posebank.bank.build import build_bank
from posebank.config import BankConfig, ViewConfig
from posebank.datasets2d import read_annotations, to_canonical_2d
from posebank.errors import OutputConflictError
from posebank.shards import annotations_schema, read_metadata, to_numpy, validate

DEMO = Path(__file__).resolve().parents[1] / "fixtures" / "demo" / "cmu"


@pytest.fixture(scope="module")
def bank_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cmu")
    for subject, seq in (("09", "09_12"), ("135", "135_04")):
        (root / "subjects" / subject).mkdir(parents=True)
        for f in (f"{subject}.asf", f"{seq}.amc"):
            shutil.copy(DEMO / "subjects" / subject / f, root / "subjects" / subject)
    out = tmp_path_factory.mktemp("bank")
    build_bank(BankConfig(sources=(("cmu", str(root)),), out=str(out), view=ViewConfig(views=8)))
    return out


def _queries_from_bank(bank_dir: Path, rows: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    bank = open_bank(bank_dir)
    got = bank.take(np.array(rows), columns=("pose_2d", "pose_3d"))
    px = 250.0 * got["pose_2d"].astype(np.float64) + np.array([400.0, 300.0])  # metres -> pixels
    return px, got["pose_2d"], got["pose_3d"]


def test_a_bank_pose_finds_itself_and_is_completed_exactly(bank_dir: Path) -> None:
    rows = [3, 40, 77, 150]
    px, _, pose_3d = _queries_from_bank(bank_dir, rows)
    visible = np.ones(px.shape[:2], bool)
    visible[:, [0, 1, 2]] = False  # ankles and a knee hidden
    hidden = np.where(visible[..., None], px, np.nan)
    labels = label_people(open_bank(bank_dir), hidden, visible, k=3, label_mode="top1", search=None)
    assert (labels.match_distance < 1e-3).all()
    np.testing.assert_allclose(labels.pose_2d, px, atol=1e-3)  # hidden joints recovered in pixels
    np.testing.assert_allclose(labels.pose_3d, pose_3d, atol=1e-6)
    assert (labels.match_spread >= 0).all() and all(f == [] for f in labels.flags)


def test_swapped_labels_are_flagged_and_few_joints_kept(bank_dir: Path) -> None:
    from posebank.skeleton import get_skeleton

    sk = get_skeleton("j13")
    px, _, _ = _queries_from_bank(bank_dir, [10, 60, 90])
    swapped = px[:, list(sk.flip_permutation)]
    visible = np.ones(px.shape[:2], bool)
    few = np.zeros_like(visible)
    few[:, :2] = True
    pose = np.concatenate([swapped, px])
    vis = np.concatenate([visible, few])
    labels = label_people(open_bank(bank_dir), pose, vis, k=2, label_mode="fused-fit")
    assert all(FLAG_SWAP in f for f in labels.flags[:3])
    assert (labels.swapped_distance[:3] < 1e-3).all()
    assert all(f == [FLAG_TOO_FEW] for f in labels.flags[3:])
    assert np.isnan(labels.pose_3d[3:]).all() and (labels.match_pose_id[3:] == -1).all()


@pytest.mark.parametrize("mode", ["fused-fit", "lifted-fit", "topk-mean", "depth-transfer"])
def test_label_modes_give_body_centred_poses(bank_dir: Path, mode: str) -> None:
    from posebank.skeleton import body_centre, get_skeleton

    px, _, _ = _queries_from_bank(bank_dir, [5, 25])
    px = px + np.random.default_rng(0).normal(scale=3.0, size=px.shape)
    visible = np.ones(px.shape[:2], bool)
    bank = open_bank(bank_dir)
    lifter, _ = stored_lifter(bank, visibility_patterns(visible, 3), LifterConfig(steps=60))  # read by lifted-fit
    labels = label_people(bank, px, visible, k=4, label_mode=mode, lifter=lifter)
    assert np.isfinite(labels.pose_3d).all()
    np.testing.assert_allclose(body_centre(labels.pose_3d, get_skeleton("j13")), 0.0, atol=0.05)


def _annotate(bank_dir: Path, out: Path, file: Path, dataset: str, **kw) -> AnnotateConfig:
    # fused-fit unless a test asks: lifted-fit's network trains for minutes (tests/annotate/test_lifter.py covers it)
    kw = {"label_mode": "fused-fit", **kw}
    config = AnnotateConfig(dataset=dataset, annotation_file=str(file), bank=str(bank_dir), out=str(out), **kw)
    annotate(config)
    return config


@pytest.mark.parametrize("mode", ["fused-fit", "lifted-fit"])
def test_mpii_h5_end_to_end(bank_dir: Path, shared_data: Path, tmp_path: Path, mode: str) -> None:
    h5 = shared_data / "mpii" / "valid_a.h5"
    _annotate(bank_dir, tmp_path / "a", h5, "mpii", k=3, label_mode=mode, lifter=LifterConfig(steps=60))
    files = sorted((tmp_path / "a" / "annotations").glob("*.parquet"))
    table = pq.read_table(files[0])
    validate(table, annotations_schema(13), path=files[0])
    people = read_annotations("mpii", h5)
    canon = to_canonical_2d(people)
    assert table.num_rows == len(people)
    pose_2d = to_numpy(table.column("pose_2d"), (13, 2))
    visible = np.stack(table.column("visible").to_pylist())
    np.testing.assert_array_equal(visible, canon.visible)
    np.testing.assert_allclose(pose_2d[visible], canon.pose_2d[visible], atol=1e-3)  # annotated joints kept
    assert np.isfinite(pose_2d).all()
    boxes = np.stack(table.column("box_full").to_pylist())
    assert (pose_2d[..., 0] >= boxes[:, None, 0] - 1e-3).all() and (pose_2d[..., 1] <= boxes[:, None, 3] + 1e-3).all()
    meta = read_metadata(files[0])
    assert meta["annotation_file"]["sha256"] and meta["bank_manifest_sha256"] and meta["skeleton"] == "j13"
    if mode == "lifted-fit":  # the network's provenance: the stored folder the labels came from
        assert (bank_dir / ".index" / f"lifter-{meta['lifter']['key']}").is_dir()
    sizes = np.array(table.column("head_size").to_pylist(), dtype=float)
    assert np.isfinite(sizes).all() and (sizes > 5).all()
    estimate = np.array(table.column("error_estimate").to_pylist(), dtype=float)  # mm, None unmatched
    matched = np.array([v is not None for v in table.column("match_distance").to_pylist()])
    assert matched.any() and (np.isfinite(estimate) == matched).all() and (estimate[matched] > 0).all()


def test_engines_agree_on_real_annotations(bank_dir: Path, shared_data: Path, tmp_path: Path) -> None:
    h5 = shared_data / "mpii" / "valid_a.h5"
    canon = to_canonical_2d(read_annotations("mpii", h5))
    sel = slice(0, 200)
    bank = open_bank(bank_dir)
    from posebank.search import SearchConfig

    from posebank.annotate.matching import search_bank

    ref = label_people(bank, canon.pose_2d[sel], canon.visible[sel], k=2, label_mode="fused-fit", search=SearchConfig(engine="numpy"))
    top2 = search_bank(bank, canon.pose_2d[sel], canon.visible[sel], 2, config=SearchConfig(engine="numpy"))
    distinct = top2.distances[:, 1] - top2.distances[:, 0] > 1e-5  # ties aside
    every_cell = dict(ivf_nprobe=1 << 20, ivf_nprobe_full=1 << 20, ivf_nprobe_check=1 << 20)  # every cell: exact
    for engine, extra in (("blas", {}), ("torch", {}), ("faiss", {}), ("faiss-ivf", every_cell)):
        search = SearchConfig(engine=engine, **extra)
        got = label_people(bank, canon.pose_2d[sel], canon.visible[sel], k=2, label_mode="fused-fit", search=search)
        np.testing.assert_allclose(got.match_distance, ref.match_distance, atol=1e-4)
        np.testing.assert_allclose(got.swapped_distance, ref.swapped_distance, atol=1e-4)  # the left/right check
        np.testing.assert_array_equal(got.match_pose_id[distinct], ref.match_pose_id[distinct])
        np.testing.assert_array_equal(got.match_view_id[distinct], ref.match_view_id[distinct])


def test_coco_resume_and_conflict(bank_dir: Path, shared_data: Path, tmp_path: Path) -> None:
    coco = shared_data / "coco" / "mmpose_test_coco.json"
    out = tmp_path / "coco"
    config = _annotate(bank_dir, out, coco, "coco")
    first = (out / "annotations" / "part-00000.parquet").read_bytes()
    report = annotate(config)
    assert report.shards_reused == 1 and report.shards_written == 0
    assert (out / "annotations" / "part-00000.parquet").read_bytes() == first
    table = pq.read_table(out / "annotations" / "part-00000.parquet")
    flags = table.column("flags").to_pylist()
    assert sum(FLAG_TOO_FEW in f for f in flags) == 2  # the two people with no keypoints stay, flagged
    assert table.num_rows == 14
    with pytest.raises(OutputConflictError):
        annotate(AnnotateConfig(label_mode="fused-fit", dataset="coco", annotation_file=str(coco), bank=str(bank_dir), out=str(out), k=2))
    _annotate(bank_dir, tmp_path / "again", coco, "coco")
    # Same job, another --out: byte-identical shard.
    assert (tmp_path / "again" / "annotations" / "part-00000.parquet").read_bytes() == first
    again = pq.read_table(tmp_path / "again" / "annotations" / "part-00000.parquet")
    for column in ("pose_2d", "match_pose_id", "match_distance"):  # same inputs, same labels (NaN = NaN)
        np.testing.assert_array_equal(np.array(again.column(column).to_pylist(), dtype=float),
                                      np.array(table.column(column).to_pylist(), dtype=float))  # fmt: skip


def test_files_without_people_are_refused_naming_them(bank_dir: Path, tmp_path: Path) -> None:
    """An MPII JSON holding [] (and a COCO file whose annotations are empty) used to fail with
    "cannot reshape array of size 0", no file named; now the file is named and no --out is made."""
    import json

    from posebank.errors import InputError

    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    with pytest.raises(InputError, match="holds no records") as info:
        _annotate(bank_dir, tmp_path / "out", empty, "mpii")
    assert info.value.path == empty
    coco = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "coco" / "mmpose_test_coco.json").read_text())
    (tmp_path / "person_keypoints_val.json").write_text(json.dumps({**coco, "annotations": []}))
    with pytest.raises(InputError, match=r"person_keypoints_val\.json: holds no people"):
        _annotate(bank_dir, tmp_path / "out", tmp_path / "person_keypoints_val.json", "coco")
    assert not (tmp_path / "out").exists()
