"""Annotation shards -> a torch Dataset of (image, target) pairs for LCR-Net++ training and evaluation.

Any set of annotation shards (posebank annotate: MPII/LSP/COCO with completed 2D and pseudo-3D;
posebank synth: rendered images with their true poses) plus an images root is a training set
(docs/design.md). Rows are people; they are grouped here by image, so an image with N people gives one
target dict with N people, in the format of lcrnet.model.LCRNet.

Who is a training target: a person with a 3D pose (annotate leaves pose_3d null for people it could
not match, flagged too_few_joints or degenerate_query) whose 2D pose is finite. The others are
returned as `ignore_boxes` (their box_full), so that the pose head does not learn them as
background (lcrnet/targets.py).

Which joints count as annotated (the target's `visible`, the model's query mask and the joints that
evaluation scores): the shard's `visible` (MPII: has coordinates) OR a joint that is `occluded`
but inside the image. For synthetic data, whose `visible` means "inside and not occluded", this
gives "inside the image": the joints a person annotating the image could have clicked, as in MPII,
where occluded joints are annotated and truncated ones are not.

Augmentation (training): a zoom (lcrnet.augment.zoom, scale augmentation that survives the model's
resizing) and a left-right mirror (lcrnet.augment.hflip). Their random draws come from a generator
seeded by (seed, epoch, image index), so they do not depend on worker processes or on a resume.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
from torch.utils.data import Dataset, Sampler

from posebank.errors import InputError
from posebank.skeleton import Skeleton

from .augment import hflip, zoom

UNMATCHED_FLAGS = frozenset({"too_few_joints", "degenerate_query"})  # posebank.annotate: no pseudo-3D
_COLUMNS = ("split", "image", "pose_2d", "visible", "occluded", "pose_3d", "box_full", "head_size", "flags")


@dataclass(frozen=True)
class ShardSource:
    """One folder (or file) of annotation shards and the root its `image` paths are relative to.

    `image` values that leave the root (absolute, or ".." above it) are refused unless
    `allow_outside_images_root` (posebank.verify.image_file).
    """

    data: Path
    images_root: Path
    allow_outside_images_root: bool = False


def resolve_sources(
    data: Sequence[str | Path], images_root: str | Path | None = None, *, allow_outside_images_root: bool = False
) -> list[ShardSource]:
    """Pair each data folder with its images root.

    An explicit `images_root` wins (for every folder). Otherwise the shards' metadata `images_root`
    (posebank synth writes "images") is taken relative to the data folder, or to its parent when
    the folder given is the annotations/ folder itself. The shards are checked against the manifest
    of the output that holds them (posebank.verify.check_output_files).

    Raises:
        InputError: no shards in a folder, a damaged or unlisted shard, or no images root known.
    """
    from posebank.shards import open_dataset, read_metadata
    from posebank.verify import check_output_files

    sources = []
    for d in map(Path, data):
        files = open_dataset(d).files  # raises InputError when there is nothing to read
        check_output_files(files)
        if images_root is not None:
            sources.append(ShardSource(d, Path(images_root), allow_outside_images_root))
            continue
        rel = read_metadata(files[0]).get("images_root")
        if rel is None:
            raise InputError(d, "the shards do not name their images root; give --images-root")
        base = d if d.is_dir() else d.parent
        candidates = [base / rel, base.parent / rel]
        found = next((c for c in candidates if c.is_dir()), None)
        if found is None:
            raise InputError(d, f"images root {rel!r} (from the shard metadata) not found next to it; give --images-root")
        sources.append(ShardSource(d, found, allow_outside_images_root))
    return sources


def _fixed_list(column, shape: tuple[int, ...]) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:  # noqa: ANN001 -- a pyarrow array
    """A nullable fixed-size-list column -> (N, *shape) float32 (NaN on null rows) and (N,) validity."""
    from posebank.shards import to_numpy

    valid = column.is_valid().to_numpy(zero_copy_only=False).astype(bool)
    out = np.full((len(column), *shape), np.nan, dtype=np.float32)
    if valid.any():
        out[valid] = to_numpy(column.filter(column.is_valid()), shape)
    return out, valid


@dataclass
class _People:
    """Rows of one source, as arrays (R people, J joints)."""

    image: list[str]
    pose_2d: npt.NDArray[np.float32]  # (R, J, 2) px
    annotated: npt.NDArray[np.bool_]  # (R, J)
    pose_3d: npt.NDArray[np.float32]  # (R, J, 3) m, NaN when unmatched
    is_target: npt.NDArray[np.bool_]  # (R,)
    box_full: npt.NDArray[np.float32]  # (R, 4) px
    head_size: npt.NDArray[np.float32]  # (R,) px, NaN when unknown


def _checked_batches(source: ShardSource, files: Sequence[str]) -> Iterator:  # noqa: ANN401 -- pyarrow batches
    """Record batches of _COLUMNS, file by file, each checked before use: finite, plausible poses
    (posebank.verify.check_table_values) and image paths inside the images root; errors name the shard."""
    from posebank.shards import iter_batches, open_dataset
    from posebank.verify import check_table_values, image_file

    for path in files:
        first_row = 0
        for batch in iter_batches(open_dataset(path), columns=_COLUMNS):
            check_table_values(batch, path, first_row=first_row)
            for row, name in enumerate(batch.column("image").to_pylist()):
                try:
                    image_file(source.images_root, name, allow_outside=source.allow_outside_images_root, where=path)
                except InputError as err:
                    raise InputError(path, err.message, record=f"row {first_row + row}") from None
            first_row += batch.num_rows
            yield batch


def _read_people(source: ShardSource, num_joints: int, split: str | None) -> _People:
    from posebank.shards import open_dataset

    dataset = open_dataset(source.data)
    found = dataset.schema.field("pose_2d").type.list_size // 2
    if found != num_joints:
        raise InputError(source.data, f"shards have {found} joints, the model {num_joints}")
    parts: list[_People] = []
    for batch in _checked_batches(source, dataset.files):
        keep = np.ones(batch.num_rows, dtype=bool)
        if split is not None:
            keep = np.asarray(batch.column("split").to_pylist()) == split
        if not keep.any():
            continue
        batch = batch.filter(keep)
        pose_2d, _ = _fixed_list(batch.column("pose_2d"), (num_joints, 2))
        pose_3d, has_3d = _fixed_list(batch.column("pose_3d"), (num_joints, 3))
        box, _ = _fixed_list(batch.column("box_full"), (4,))
        # Non-nullable fixed-size lists: their flattened values are the (R, J) masks, row-major.
        visible = batch.column("visible").flatten().to_numpy(zero_copy_only=False).astype(bool).reshape(-1, num_joints)
        occluded = batch.column("occluded").flatten().to_numpy(zero_copy_only=False).astype(bool).reshape(-1, num_joints)
        head = batch.column("head_size").to_numpy(zero_copy_only=False).astype(np.float32)
        flags = batch.column("flags").to_pylist()
        unmatched = np.array([bool(UNMATCHED_FLAGS.intersection(f or ())) for f in flags], dtype=bool)
        finite = np.isfinite(pose_2d).all(axis=(1, 2)) & np.isfinite(pose_3d).all(axis=(1, 2))
        parts.append(
            _People(
                image=batch.column("image").to_pylist(), pose_2d=pose_2d,
                annotated=visible | occluded, pose_3d=pose_3d, is_target=has_3d & ~unmatched & finite,
                box_full=box, head_size=head,
            )  # fmt: skip
        )
    if not parts:
        j = num_joints
        return _People([], np.zeros((0, j, 2), np.float32), np.zeros((0, j), bool), np.zeros((0, j, 3), np.float32),
                       np.zeros(0, bool), np.zeros((0, 4), np.float32), np.zeros(0, np.float32))  # fmt: skip
    return _People(
        image=[name for p in parts for name in p.image],
        **{k: np.concatenate([getattr(p, k) for p in parts]) for k in
           ("pose_2d", "annotated", "pose_3d", "is_target", "box_full", "head_size")},
    )  # fmt: skip


class PoseShardDataset(Dataset):
    """Images of annotation shards with their LCR-Net++ targets, one item per image.

    Args:
        sources: shard folders with their images roots (`resolve_sources`).
        skeleton: the model's joint set (the shards must have the same number of joints).
        split: keep rows of this split only (None: all rows).
        flip: mirror each image left-right with probability 1/2 (training).
        scale_range: (min, max) zoom factor, drawn log-uniformly per image (training); None: no zoom.
        seed: seeds the augmentation draws.
        max_images: keep the first this many images (0: all), in shard order.

    Items: `dataset[i]` or `dataset[(i, epoch)]` (the batch sampler passes the epoch so that each
    epoch draws new augmentations) -> (image, target):
        image: (3, H, W) float32 RGB in [0, 1] (PIL decoding, any size).
        target: pose_2d (N, J, 2) float32 px of the returned image (origin top-left);
            visible (N, J) bool, the annotated joints (module docstring); pose_3d (N, J, 3) float32
            metres, camera frame (x right, y down, z forward); head_size (N,) float32 px (MPII's
            PCKh normaliser, NaN when the shard has none); ignore_boxes (I, 4) float32 px of people
            who are not targets; image_id () int64, the item index.
    """

    def __init__(
        self,
        sources: Sequence[ShardSource],
        skeleton: Skeleton,
        *,
        split: str | None = None,
        flip: bool = False,
        scale_range: tuple[float, float] | None = None,
        seed: int = 0,
        max_images: int = 0,
    ) -> None:
        self.sources = list(sources)
        self.skeleton = skeleton
        self.flip = flip
        self.scale_range = scale_range
        self.seed = seed
        people = [_read_people(s, skeleton.num_joints, split) for s in self.sources]
        # Group rows by (source, image), images in order of first appearance.
        keys: dict[tuple[int, str], list[tuple[int, int]]] = {}
        for si, p in enumerate(people):
            for row, name in enumerate(p.image):
                keys.setdefault((si, name), []).append((si, row))
        items = list(keys.items())
        if max_images > 0:
            items = items[:max_images]
        self.images: list[tuple[int, str]] = [k for k, _ in items]
        self._people = people
        self._rows: list[list[tuple[int, int]]] = [rows for _, rows in items]

    def __len__(self) -> int:
        return len(self.images)

    @property
    def num_people(self) -> int:
        """Training targets over all images."""
        return sum(int(self._people[s].is_target[r]) for rows in self._rows for s, r in rows)

    def image_path(self, index: int) -> Path:
        """The file of image `index`."""
        source, name = self.images[index]
        return self.sources[source].images_root / name

    def target(self, index: int) -> dict[str, torch.Tensor]:
        """The target of image `index` before augmentation (pixels of the file as stored)."""
        rows = self._rows[index]
        j = self.skeleton.num_joints

        def gather(attr: str, shape: tuple[int, ...], want: bool) -> npt.NDArray:
            values = [getattr(self._people[s], attr)[r] for s, r in rows if self._people[s].is_target[r] == want]
            return np.stack(values) if values else np.zeros((0, *shape), dtype=np.float32)

        return {
            "pose_2d": torch.from_numpy(gather("pose_2d", (j, 2), True).astype(np.float32)),
            "visible": torch.from_numpy(gather("annotated", (j,), True).astype(bool)),
            "pose_3d": torch.from_numpy(gather("pose_3d", (j, 3), True).astype(np.float32)),
            "head_size": torch.from_numpy(gather("head_size", (), True).astype(np.float32)),
            "ignore_boxes": torch.from_numpy(_valid_boxes(gather("box_full", (4,), False))),
            "image_id": torch.tensor(index, dtype=torch.int64),
        }

    def load_image(self, index: int) -> torch.Tensor:
        """(3, H, W) float32 RGB in [0, 1]."""
        from PIL import Image
        from torchvision.transforms.functional import pil_to_tensor

        path = self.image_path(index)
        try:
            with Image.open(path) as img:
                tensor = pil_to_tensor(img.convert("RGB"))
        except (FileNotFoundError, OSError) as err:
            raise InputError(path, f"cannot read image: {err}") from None
        return tensor.float().div_(255.0)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        index, epoch = (int(key[0]), int(key[1])) if isinstance(key, (tuple, list)) else (int(key), 0)
        image, target = self.load_image(index), self.target(index)
        if self.flip or self.scale_range is not None:
            rng = np.random.default_rng([self.seed, epoch, index])
            if self.scale_range is not None and self.scale_range != (1.0, 1.0):
                lo, hi = self.scale_range
                scale = math.exp(rng.uniform(math.log(lo), math.log(hi)))
                _, h, w = image.shape
                new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
                # The zoomed content is cropped (scale > 1) or padded (scale < 1) back to W x H at a random place.
                ox = rng.uniform(min(0, w - new_w), max(0, w - new_w))
                oy = rng.uniform(min(0, h - new_h), max(0, h - new_h))
                image, target = zoom(image, target, (new_w, new_h), (round(ox), round(oy)))
            if self.flip and rng.random() < 0.5:
                image, target = hflip(image, target, self.skeleton)
        return image, target


def _valid_boxes(boxes: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    ok = np.isfinite(boxes).all(axis=1) & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return np.ascontiguousarray(boxes[ok], dtype=np.float32).reshape(-1, 4)


def collate(batch: list[tuple[torch.Tensor, dict[str, torch.Tensor]]]) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    """A list of (image, target) -> (images, targets): detection batches keep images of any size."""
    return [image for image, _ in batch], [target for _, target in batch]


class ResumableBatchSampler(Sampler[list[tuple[int, int]]]):
    """Batches of (index, epoch) for iterations [start, stop): shuffled epochs, resumable, shardable.

    Epoch e is torch's DistributedSampler order for seed and epoch e (the same order for any number
    of workers; with `num_replicas` > 1 each rank takes its share, as under torchrun), cut into
    batches of `batch_size` (the last incomplete batch of an epoch is dropped). Iteration i is
    batch i of that endless sequence, so a run resumed at iteration i sees exactly the batches an
    uninterrupted run would have seen.
    """

    def __init__(
        self,
        dataset_size: int,
        batch_size: int,
        *,
        seed: int,
        start: int,
        stop: int,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        per_replica = dataset_size // num_replicas
        if per_replica < batch_size:
            raise ValueError(
                f"{dataset_size} images for {num_replicas} process(es) cannot fill a batch of {batch_size}"
            )
        self.dataset_size = dataset_size
        self.batch_size = batch_size
        self.seed = seed
        self.start = start
        self.stop = stop
        self.num_replicas = num_replicas
        self.rank = rank
        self.batches_per_epoch = per_replica // batch_size

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def epoch_of(self, iteration: int) -> int:
        """The epoch iteration `iteration` belongs to."""
        return iteration // self.batches_per_epoch

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        from torch.utils.data.distributed import DistributedSampler

        iteration = self.start
        while iteration < self.stop:
            epoch = self.epoch_of(iteration)
            sampler = DistributedSampler(
                range(self.dataset_size), num_replicas=self.num_replicas, rank=self.rank,
                shuffle=True, seed=self.seed, drop_last=True,
            )  # fmt: skip
            sampler.set_epoch(epoch)
            order = list(sampler)
            first = iteration - epoch * self.batches_per_epoch
            for b in range(first, self.batches_per_epoch):
                if iteration >= self.stop:
                    return
                yield [(i, epoch) for i in order[b * self.batch_size : (b + 1) * self.batch_size]]
                iteration += 1


def no_split_message(sources: Sequence[ShardSource], split: str | None) -> str:
    """Why a dataset of `split` is empty, naming the splits the shards do hold and the option to choose one."""
    from posebank.shards import open_dataset

    present: set[str] = set()
    for source in sources:
        present.update(s for s in open_dataset(source.data).to_table(columns=["split"]).column("split").to_pylist() if s)
    if not present:
        return "the shards hold no rows"
    return (f"no images of split {split!r} in the data; splits present: {', '.join(sorted(present))} "
            "(choose one with --split, or --split all)")  # fmt: skip
