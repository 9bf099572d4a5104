"""lcrnet.data on real shards: synthetic images (posebank synth) and an annotated MPII shard."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from torchvision.models.detection._utils import Matcher

from lcrnet.augment import zoom
from lcrnet.metrics import HEAD_SIZE_M, px_per_metre
from lcrnet.data import (
    PoseShardDataset,
    ResumableBatchSampler,
    collate,
    resolve_sources,
)
from lcrnet.targets import build_ground_truth, label_proposals
from posebank.errors import InputError

J = 13
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _rows(synth: Path, split: str | None = None) -> int:
    table = pq.read_table(synth / "annotations" / "part-00000.parquet", columns=["split"])
    return table.num_rows if split is None else sum(s == split for s in table.column("split").to_pylist())


def test_dataset_reads_synth_shards_with_documented_shapes(synth_data, skeleton) -> None:  # type: ignore[no-untyped-def]
    synth = synth_data["synth"]
    (source,) = resolve_sources([synth])
    assert source.images_root == synth / "images"  # from the shard metadata, relative to --data
    assert resolve_sources([synth / "annotations"])[0].images_root == synth / "images"  # the annotations/ folder itself
    train = PoseShardDataset([source], skeleton, split="train")
    val = PoseShardDataset([source], skeleton, split="val")
    assert (len(train), len(val)) == (9, 3)
    assert train.num_people == _rows(synth, "train") and val.num_people == _rows(synth, "val")
    people = 0
    for i in range(len(train)):
        image, target = train[i]
        assert image.shape == (3, 128, 128) and image.dtype == torch.float32
        assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
        n = target["pose_2d"].shape[0]
        assert n >= 1  # one target dict per image with all its people
        assert target["pose_2d"].shape == (n, J, 2) and target["pose_2d"].dtype == torch.float32
        assert target["visible"].shape == (n, J) and target["visible"].dtype == torch.bool
        assert target["pose_3d"].shape == (n, J, 3) and torch.isfinite(target["pose_3d"]).all()
        # synth writes each body's true head size: HEAD_SIZE_M at the px-per-metre scale it was drawn at
        assert target["head_size"].shape == (n,) and torch.isfinite(target["head_size"]).all()
        scale = px_per_metre(target["pose_2d"].numpy(), target["pose_3d"].numpy())
        np.testing.assert_allclose(target["head_size"].numpy(), HEAD_SIZE_M * scale, rtol=1e-3)
        assert target["ignore_boxes"].shape == (0, 4)
        assert int(target["image_id"]) == i
        people += n
    assert people == train.num_people
    images, targets = collate([train[0], train[1]])
    assert len(images) == len(targets) == 2


def test_explicit_images_root_wins(synth_data, skeleton, tmp_path) -> None:  # type: ignore[no-untyped-def]
    (source,) = resolve_sources([synth_data["synth"]], images_root=tmp_path)
    assert source.images_root == tmp_path
    with pytest.raises(InputError, match="cannot read image"):
        PoseShardDataset([source], skeleton).load_image(0)


def test_hflip_in_the_dataset_swaps_left_right_and_mirrors_3d(synth_data, skeleton) -> None:  # type: ignore[no-untyped-def]
    sources = resolve_sources([synth_data["synth"]])
    plain = PoseShardDataset(sources, skeleton, split="train")
    flipping = PoseShardDataset(sources, skeleton, split="train", flip=True, seed=5)
    image, target = plain[0]
    perm = list(skeleton.flip_permutation)
    flips = 0
    for epoch in range(8):
        image_e, target_e = flipping[(0, epoch)]
        if torch.equal(image_e, image):
            assert torch.equal(target_e["pose_2d"], target["pose_2d"])
            continue
        flips += 1
        assert torch.equal(image_e, image.flip(-1))
        torch.testing.assert_close(target_e["pose_2d"][..., 0], 128 - target["pose_2d"][:, perm, 0])
        torch.testing.assert_close(target_e["pose_2d"][..., 1], target["pose_2d"][:, perm, 1])
        torch.testing.assert_close(target_e["pose_3d"][..., 0], -target["pose_3d"][:, perm, 0])
        torch.testing.assert_close(target_e["pose_3d"][..., 1:], target["pose_3d"][:, perm, 1:])
        assert torch.equal(target_e["visible"], target["visible"][:, perm])
        # The mirrored person's right wrist is where the left wrist was.
        rw, lw = skeleton.index("right_wrist"), skeleton.index("left_wrist")
        torch.testing.assert_close(target_e["pose_2d"][:, rw, 0], 128 - target["pose_2d"][:, lw, 0])
    assert 0 < flips < 8  # about half of the draws flip
    assert torch.equal(flipping[(0, 3)][0], flipping[(0, 3)][0])  # the same (index, epoch) draws the same


def test_zoom_maps_joints_and_truncates_at_the_border() -> None:
    image = torch.rand(3, 40, 60)
    target = {
        "pose_2d": torch.tensor([[[10.0, 10.0], [50.0, 30.0]]]),
        "visible": torch.tensor([[True, True]]),
        "pose_3d": torch.zeros(1, 2, 3),
        "ignore_boxes": torch.tensor([[0.0, 0.0, 20.0, 10.0]]),
        "head_size": torch.tensor([4.0]),
    }
    out_image, out = zoom(image, target, size=(120, 80), offset=(-30, -10))
    assert out_image.shape == (3, 40, 60)
    torch.testing.assert_close(out["pose_2d"], torch.tensor([[[-10.0, 10.0], [70.0, 50.0]]]))
    assert out["visible"].tolist() == [[False, False]]  # both joints left the canvas
    torch.testing.assert_close(out["ignore_boxes"], torch.tensor([[-30.0, -10.0, 10.0, 10.0]]))
    torch.testing.assert_close(out["head_size"], torch.tensor([8.0]))
    small_image, small = zoom(image, target, size=(30, 20), offset=(15, 10))
    torch.testing.assert_close(small["pose_2d"], torch.tensor([[[20.0, 15.0], [40.0, 25.0]]]))
    assert small["visible"].all()
    torch.testing.assert_close(small_image[:, 0, 0], torch.tensor([0.485, 0.456, 0.406]))  # padding: the mean colour


def _with_unmatched_person(synth: Path, out: Path) -> Path:
    """A copy of the synth shard where row 0 lost its 3D pose (as posebank annotate leaves unmatched people)."""
    table = pq.read_table(synth / "annotations" / "part-00000.parquet")
    pose_3d = table.column("pose_3d").combine_chunks()
    mask = np.zeros(len(table), dtype=bool)
    mask[0] = True
    nulled = pa.FixedSizeListArray.from_arrays(pose_3d.values, pose_3d.type.list_size, mask=pa.array(mask))
    flags = table.column("flags").to_pylist()
    flags[0] = ["too_few_joints"]
    table = table.set_column(table.schema.get_field_index("pose_3d"), table.schema.field("pose_3d"), nulled)
    table = table.set_column(table.schema.get_field_index("flags"), table.schema.field("flags"),
                             pa.array(flags, type=pa.list_(pa.string())))  # fmt: skip
    out.mkdir()
    pq.write_table(table, out / "part-00000.parquet")
    return out


def test_people_without_3d_are_ignore_boxes_not_background(synth_data, skeleton, anchors, tmp_path) -> None:  # type: ignore[no-untyped-def]
    synth = synth_data["synth"]
    data = _with_unmatched_person(synth, tmp_path / "shards")
    original = PoseShardDataset(resolve_sources([synth]), skeleton)
    dataset = PoseShardDataset(resolve_sources([data], images_root=synth / "images"), skeleton)
    assert dataset.num_people == original.num_people - 1
    _, target = dataset[0]
    _, before = original[0]
    assert target["pose_2d"].shape[0] == before["pose_2d"].shape[0] - 1
    (ignore,) = target["ignore_boxes"]
    box_full = pq.read_table(synth / "annotations" / "part-00000.parquet", columns=["box_full"]).column(0)[0].as_py()
    torch.testing.assert_close(ignore, torch.tensor(box_full))
    # In the targets, a would-be background proposal on that box is not sampled (-1).
    gt = build_ground_truth(target["pose_2d"], target["visible"], target["pose_3d"], anchors, skeleton, 0.1,
                            target["ignore_boxes"])  # fmt: skip
    far = torch.tensor([[-100.0, -100.0, -50.0, -50.0]])
    labels, _ = label_proposals(torch.cat([ignore[None], far]), gt, Matcher(0.5, 0.5))
    assert labels.tolist() == [-1, 0]


def test_batch_sampler_resumes_and_shards() -> None:
    full = list(ResumableBatchSampler(10, 3, seed=1, start=0, stop=9))
    assert len(full) == 9 and all(len(b) == 3 for b in full)  # 3 batches per epoch, the last 1 image dropped
    assert list(ResumableBatchSampler(10, 3, seed=1, start=4, stop=9)) == full[4:]
    assert [e for b in full for _, e in b[:1]] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    epoch0 = {i for b in full[:3] for i, _ in b}
    assert len(epoch0) == 9  # no image twice within an epoch
    rank0 = list(ResumableBatchSampler(10, 2, seed=1, start=0, stop=2, num_replicas=2, rank=0))
    rank1 = list(ResumableBatchSampler(10, 2, seed=1, start=0, stop=2, num_replicas=2, rank=1))
    assert not {i for b in rank0 for i, _ in b} & {i for b in rank1 for i, _ in b}
    with pytest.raises(ValueError, match="cannot fill"):
        ResumableBatchSampler(3, 4, seed=0, start=0, stop=1)


def test_annotated_mpii_shard(synth_data, skeleton, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # posebank annotate on the bundled MPII sample (real annotations, completed 2D + pseudo-3D); the
    # MPII images are not bundled, so blank images of a size that holds the poses stand in for them.
    from PIL import Image

    from posebank.annotate import AnnotateConfig, annotate

    out = tmp_path / "mpii"
    annotate(AnnotateConfig(label_mode="fused-fit", dataset="mpii", annotation_file=str(FIXTURES / "demo" / "mpii" / "valid_a.h5"),
                            bank=str(synth_data["bank"]), out=str(out), engine="numpy", split="val"))  # fmt: skip
    with pytest.raises(InputError, match="images root"):
        resolve_sources([out])  # annotate's shards do not name an images root
    table = pq.read_table(next((out).rglob("*.parquet")), columns=["image"])
    names = list(dict.fromkeys(table.column("image").to_pylist()))[:3]
    root = tmp_path / "images"
    root.mkdir()
    for name in names:
        Image.new("RGB", (1920, 1080), (90, 90, 90)).save(root / name)
    dataset = PoseShardDataset(resolve_sources([out], images_root=root), skeleton, split="val", max_images=3)
    assert len(dataset) == 3
    for i in range(3):
        image, target = dataset[i]
        n = target["pose_2d"].shape[0]
        assert image.shape == (3, 1080, 1920)
        assert n >= 1 and target["pose_3d"].shape == (n, J, 3)
        assert torch.isfinite(target["pose_2d"]).all() and torch.isfinite(target["pose_3d"]).all()
        assert (target["head_size"] > 0).all()  # MPII head sizes: PCKh normalisers
        assert target["visible"].any(dim=1).all()


@pytest.mark.parametrize("image", ["../../outside/secret.jpg", "/etc/passwd", "00000/../../../etc/passwd"])
def test_image_paths_that_leave_the_images_root_are_refused(synth_data, skeleton, tmp_path, image) -> None:  # type: ignore[no-untyped-def]
    """Shards are data: one naming a file outside the images root is refused before any image is
    opened, naming the shard and row, unless reading outside the root is allowed."""
    table = pq.read_table(synth_data["synth"] / "annotations" / "part-00000.parquet")
    names = table.column("image").to_pylist()
    names[4] = image
    crafted = tmp_path / "crafted"
    crafted.mkdir()
    pq.write_table(table.set_column(table.schema.get_field_index("image"), "image", pa.array(names)),
                   crafted / "part-00000.parquet")  # fmt: skip
    images = synth_data["synth"] / "images"
    with pytest.raises(InputError, match=r"part-00000\.parquet \(row 4\): image path .* leaves the images root") as info:
        PoseShardDataset(resolve_sources([crafted], images_root=images), skeleton)
    assert image in info.value.message
    allowed = PoseShardDataset(resolve_sources([crafted], images_root=images, allow_outside_images_root=True), skeleton)
    assert any(allowed.image_path(i) == images / image for i in range(len(allowed)))


def test_damaged_or_unlisted_shards_are_refused(synth_data, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import shutil

    copy = tmp_path / "synth"
    shutil.copytree(synth_data["synth"], copy)
    shard = copy / "annotations" / "part-00000.parquet"
    shutil.copy(shard, copy / "annotations" / "part-00001.parquet")
    with pytest.raises(InputError, match=r"part-00001\.parquet: not listed in"):
        resolve_sources([copy])
    (copy / "annotations" / "part-00001.parquet").unlink()
    data = bytearray(shard.read_bytes())
    data[100:116] = b"\xff" * 16
    shard.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"part-00000\.parquet: damaged"):
        resolve_sources([copy])
