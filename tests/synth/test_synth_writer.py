"""`synthesize` end to end on a real bank: schema, labels against a re-render, determinism across
runs and worker counts, resumption, conflicts, the preview."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from posebank.bank import open_bank
from posebank.errors import OutputConflictError
from posebank.provenance import sha256_file
from posebank.shards import annotations_schema, read_metadata, validate
from posebank.skeleton import get_skeleton
from posebank.synth import SynthConfig, body_model, render_scene, sample_scene, synthesize
from posebank.synth.raster import pixel_of
from posebank.synth.writer import image_rngs

SKELETON = get_skeleton("j13")
CONFIG = SynthConfig(images=10, size=(160, 128), people=(1, 4), seed=3, images_per_shard=4, val_fraction=0.3,
                     truncation_prob=0.5)  # fmt: skip


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
            and p.name not in ("manifest.json", ".job.json")}  # fmt: skip


@pytest.fixture(scope="module")
def synth_out(demo_bank: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    synthesize(CONFIG, demo_bank, out, preview=6)
    return out


def _table(out: Path) -> pd.DataFrame:
    return pd.concat([pq.read_table(f).to_pandas() for f in sorted((out / "annotations").glob("*.parquet"))])


def test_shards_follow_the_annotation_schema(synth_out: Path, demo_bank: Path) -> None:
    manifest = json.loads((synth_out / "manifest.json").read_text())
    assert [s["file"] for s in manifest["shards"]] == [f"annotations/part-{i:05d}.parquet" for i in range(3)]
    assert manifest["images"] == 10 and manifest["splits"] == {"train": 7, "val": 3}
    assert manifest["bank"]["manifest_sha256"] == sha256_file(demo_bank / "manifest.json")
    for s in manifest["shards"]:
        path = synth_out / s["file"]
        table = pq.read_table(path)
        validate(table, annotations_schema(13), path=path)
        assert table.num_rows == s["rows"] and sha256_file(path) == s["sha256"]
        meta = read_metadata(path)
        assert meta["kind"] == "annotations" and meta["dataset"] == "synth" and meta["skeleton"] == "j13"
        assert meta["joint_names"] == list(SKELETON.joint_names) and meta["config"]["seed"] == 3
        assert meta["bank_manifest_sha256"] == manifest["bank"]["manifest_sha256"]
        assert {"units", "frame", "version", "git_rev"} <= set(meta)
    df = _table(synth_out)
    assert len(df) == manifest["people"] and df.image.nunique() == 10
    assert set(df.dataset) == {"synth"} and (df.image_width == 160).all() and (df.image_height == 128).all()
    assert df.match_pose_id.isna().all() and df.head_box.isna().all() and df.source_pose_2d.isna().all()
    for image, group in df.groupby("image"):
        assert (synth_out / "images" / image).is_file()
        assert list(group.person) == list(range(len(group))) and group.split.nunique() == 1


def test_rows_agree_with_a_re_render(synth_out: Path, demo_bank: Path) -> None:
    (pool,) = open_bank(demo_bank).poses(columns=("pose_3d",))
    body = body_model(SKELETON)
    df = _table(synth_out)
    any_occluded = any_truncated = False
    for i, (image, group) in enumerate(df.groupby("image", sort=True)):
        scene = sample_scene(image_rngs(CONFIG.seed, i)[0], pool, CONFIG)
        r = render_scene(scene, body)
        pose_2d = np.stack(group.pose_2d.to_numpy()).reshape(-1, 13, 2)
        visible = np.stack(group.visible.to_numpy())
        occluded = np.stack(group.occluded.to_numpy())
        pose_3d = np.stack(group.pose_3d.to_numpy()).reshape(-1, 13, 3)
        np.testing.assert_allclose(pose_2d, r.labels.poses_2d, atol=1e-4)
        np.testing.assert_array_equal(visible, r.labels.visible)
        np.testing.assert_array_equal(occluded, r.labels.occluded)
        np.testing.assert_array_equal(pose_3d, scene.poses_3d)  # the bank's pose, unchanged
        # The pixel of every visible joint shows that person.
        pix = pixel_of(r.labels.poses_2d)
        p_idx, j_idx = np.nonzero(visible)
        np.testing.assert_array_equal(r.person_ids[pix[p_idx, j_idx, 1], pix[p_idx, j_idx, 0]], p_idx)
        # Visible implies inside the image; "truncated" iff a joint is outside.
        inside = (pose_2d >= -0.5).all(-1) & (pose_2d[..., 0] < 159.5) & (pose_2d[..., 1] < 127.5)
        assert not (visible & ~inside).any()
        assert [("truncated" in f) for f in group["flags"]] == list(~inside.all(1))
        # Boxes hold their joints (all joints / the upper body).
        full = np.stack(group.box_full.to_numpy())
        upper = np.stack(group.box_upper.to_numpy())
        up = [j for j in range(13) if j not in SKELETON.lower_body]
        assert (full[:, None, :2] <= pose_2d + 1e-3).all() and (pose_2d <= full[:, None, 2:] + 1e-3).all()
        assert (upper[:, None, :2] <= pose_2d[:, up] + 1e-3).all() and (pose_2d[:, up] <= upper[:, None, 2:] + 1e-3).all()
        any_occluded |= occluded.any()
        any_truncated |= not inside.all()
    assert any_occluded and any_truncated


def test_same_bank_and_seed_give_identical_bytes_for_any_worker_count(
    synth_out: Path, demo_bank: Path, tmp_path: Path
) -> None:
    again = tmp_path / "again"
    synthesize(replace(CONFIG, workers=2), demo_bank, again, preview=6)
    assert _files(again) == _files(synth_out)
    other = tmp_path / "other"
    synthesize(replace(CONFIG, seed=4, images=2), demo_bank, other)
    assert (other / "images/00000/00000000.jpg").read_bytes() != (synth_out / "images/00000/00000000.jpg").read_bytes()


def test_rerun_resumes_and_extends(synth_out: Path, demo_bank: Path, tmp_path: Path) -> None:
    out = tmp_path / "resume"
    first = synthesize(CONFIG, demo_bank, out)
    assert first.images_rendered == 10 and first.shards_written == 3
    before = _files(out)
    second = synthesize(CONFIG, demo_bank, out)
    assert second.images_rendered == 0 and second.shards_written == 0 and second.shards_reused == 3
    # Lose an image and a shard (an interrupted run): only those are made again, identically.
    (out / "images/00001/00000005.jpg").unlink()
    (out / "annotations/part-00002.parquet").unlink()
    kept = (out / "images/00000/00000000.jpg").stat().st_mtime_ns
    third = synthesize(CONFIG, demo_bank, out)
    assert third.images_rendered == 1 and third.shards_written == 2 and third.shards_reused == 1
    assert (out / "images/00000/00000000.jpg").stat().st_mtime_ns == kept
    assert _files(out) == before
    # Asking for more images renders only the new ones; asking for fewer drops the extra files.
    more = synthesize(replace(CONFIG, images=13), demo_bank, out)
    assert more.images_rendered == 3 and more.images == 13
    fewer = synthesize(CONFIG, demo_bank, out)
    assert fewer.images_rendered == 0 and _files(out) == before


def test_another_job_in_the_same_out_is_refused_unless_overwriting(demo_bank: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    synthesize(replace(CONFIG, images=2), demo_bank, out)
    with pytest.raises(OutputConflictError):
        synthesize(replace(CONFIG, images=2, seed=9), demo_bank, out)
    report = synthesize(replace(CONFIG, images=2, seed=9), demo_bank, out, overwrite=True)
    assert report.images_rendered == 2


def test_preview_is_a_png_contact_sheet(synth_out: Path) -> None:
    from PIL import Image

    from posebank.drawing_style import SYNTH_STATE_LABELS, pil_legend

    legend = pil_legend(3 * 256, SYNTH_STATE_LABELS)
    with Image.open(synth_out / "preview.png") as img:
        # 6 images, 3 per row, over the drawing style's legend strip
        assert img.format == "PNG" and img.size == (3 * 256, 2 * 256 + legend.height)
        pixels = np.asarray(img.convert("RGB"))
        assert pixels[: 2 * 256].std() > 10
        assert np.array_equal(pixels[2 * 256 :], np.asarray(legend.convert("RGB")))


def test_png_output(demo_bank: Path, tmp_path: Path) -> None:
    from PIL import Image

    synthesize(replace(CONFIG, images=1, image_format="png"), demo_bank, tmp_path)
    with Image.open(tmp_path / "images/00000/00000000.png") as img:
        assert img.format == "PNG" and img.size == (160, 128)
