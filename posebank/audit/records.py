"""Reading annotation shards batch by batch into numpy, and keeping the N worst people.

Annotation columns may be null (unmatched people have no pose_3d or match_distance); the helpers
here turn nulls into NaN so every batch is plain arrays.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ANNOTATION_COLUMNS = ("dataset", "split", "image", "person", "image_width", "image_height", "pose_2d", "visible",
                      "occluded", "pose_3d", "match_distance", "match_spread", "error_estimate", "flags")  # fmt: skip


def _fixed(column: Any, shape: tuple[int, ...], dtype: Any = np.float32) -> npt.NDArray[Any]:
    """A nullable fixed-size-list column as (n, *shape); null rows are NaN (False for booleans)."""
    from ..shards import to_numpy

    if column.null_count == 0:
        return to_numpy(column, shape).astype(dtype, copy=False)
    fill = False if dtype is bool else np.nan
    out = np.full((len(column), *shape), fill, dtype=dtype)
    valid = column.is_valid()
    mask = valid.to_numpy(zero_copy_only=False)
    if mask.any():
        out[mask] = to_numpy(column.filter(valid), shape)
    return out


def _scalar(column: Any, dtype: Any) -> npt.NDArray[Any]:
    values = column.to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=dtype)


def iter_people(files: Sequence[Path], num_joints: int, batch_rows: int, start: int = 0) -> Iterator[dict[str, Any]]:
    """Stream annotation shards as dicts of arrays, people in file order.

    Keys: dataset, split, image (object str arrays), person (int64), image_width/height (float64, NaN
    unknown), pose_2d (n, J, 2) px, visible, occluded (n, J) bool, pose_3d (n, J, 3) m (NaN unmatched),
    match_distance, match_spread, error_estimate (float64, NaN unmatched; the estimate in mm), flags (list of lists of str), row (int64:
    the person's index over all files from `start`, for stable ordering).
    """
    from ..shards import iter_batches, open_dataset

    j = num_joints
    for batch in iter_batches(open_dataset(list(files)), ANNOTATION_COLUMNS, batch_size=batch_rows):
        n = batch.num_rows
        col = batch.column
        yield {
            "dataset": _scalar(col("dataset"), object),
            "split": _scalar(col("split"), object),
            "image": _scalar(col("image"), object),
            "person": _scalar(col("person"), np.int64),
            "image_width": _scalar(col("image_width").cast("float64"), np.float64),
            "image_height": _scalar(col("image_height").cast("float64"), np.float64),
            "pose_2d": _fixed(col("pose_2d"), (j, 2)),
            "visible": _fixed(col("visible"), (j,), bool),
            "occluded": _fixed(col("occluded"), (j,), bool),
            "pose_3d": _fixed(col("pose_3d"), (j, 3)),
            "match_distance": _scalar(col("match_distance").cast("float64"), np.float64),
            "match_spread": _scalar(col("match_spread").cast("float64"), np.float64),
            "error_estimate": _scalar(col("error_estimate").cast("float64"), np.float64),
            "flags": col("flags").to_pylist(),
            "row": np.arange(start, start + n, dtype=np.int64),
        }
        start += n


def _round(a: npt.NDArray[np.floating], digits: int) -> list[Any]:
    return np.where(np.isfinite(a), np.round(a.astype(np.float64), digits), np.nan).tolist()


def person_record(batch: dict[str, Any], i: int) -> dict[str, Any]:
    """One person as JSON-able data: ids, match, flags and the poses (px to 0.01, m to 0.1 mm)."""
    def num(v: float) -> float | None:
        return None if not np.isfinite(v) else float(v)

    p3 = batch["pose_3d"][i]
    return {
        "dataset": str(batch["dataset"][i]), "split": str(batch["split"][i]), "image": str(batch["image"][i]),
        "person": int(batch["person"][i]), "match_distance": num(batch["match_distance"][i]),
        "match_spread": num(batch["match_spread"][i]), "error_estimate": num(batch["error_estimate"][i]),
        "visible_joints": int(batch["visible"][i].sum()),
        "flags": list(batch["flags"][i]), "image_width": num(batch["image_width"][i]),
        "image_height": num(batch["image_height"][i]), "visible": batch["visible"][i].tolist(),
        "occluded": batch["occluded"][i].tolist(),
        "pose_2d": _round(batch["pose_2d"][i], 2),
        "pose_3d": _round(p3, 4) if np.isfinite(p3).all() else None,
        "row": int(batch["row"][i]),
    }  # fmt: skip


@dataclass
class WorstPeople:
    """The `size` people of largest match distance seen so far (ties: earlier row first)."""

    size: int
    records: list[dict[str, Any]] = field(default_factory=list)

    def add(self, batch: dict[str, Any], rows: npt.NDArray[np.int64]) -> None:
        """Consider the people at batch indices `rows` (matched ones only)."""
        d = batch["match_distance"][rows]
        rows = rows[np.isfinite(d)]
        if self.size <= 0 or len(rows) == 0:
            return
        d = batch["match_distance"][rows]
        if len(rows) > self.size:
            keep = np.argpartition(-d, self.size - 1)[: self.size]
            rows = rows[keep]
        self.records += [person_record(batch, int(i)) for i in rows]
        self.records.sort(key=lambda r: (-r["match_distance"], r["row"]))
        del self.records[self.size :]


@dataclass
class SampledPeople:
    """A seeded random sample of `size` matched people (smallest hash of their row and the seed): the
    typical cases shown beside the worst ones. The same for any batch size or read order."""

    size: int
    seed: int
    records: list[dict[str, Any]] = field(default_factory=list)
    keys: list[int] = field(default_factory=list)

    def add(self, batch: dict[str, Any], rows: npt.NDArray[np.int64]) -> None:
        """Consider the people at batch indices `rows` (matched ones only)."""
        from .numeric import hash_keys

        rows = rows[np.isfinite(batch["match_distance"][rows])]
        if self.size <= 0 or len(rows) == 0:
            return
        keys = hash_keys(batch["row"][rows], self.seed)
        take = np.argsort(keys, kind="stable")[: self.size]
        pairs = sorted([*zip(self.keys, self.records), *((int(keys[t]), person_record(batch, int(rows[t]))) for t in take)],
                       key=lambda kr: kr[0])[: self.size]  # fmt: skip
        self.keys, self.records = [k for k, _ in pairs], [r for _, r in pairs]
