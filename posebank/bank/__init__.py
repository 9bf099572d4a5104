"""Open a projection bank built by `posebank build-bank` and get its arrays.

Opening checks the shards against manifest.json (size always, sha256 when cheap: posebank.verify),
and every batch read is checked for finite, plausible poses, so a damaged shard is named, never used.

    >>> bank = open_bank("demo/bank")
    >>> pose_2d, pose_3d = bank.poses(columns=("pose_2d", "pose_3d"))   # (N, J, 2), (N, J, 3) float32
    >>> df = bank.to_pandas(columns=["pose_id", "view_id", "source"])
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import InputError
from ..skeleton import Skeleton, get_skeleton

SHARDS_DIR = "shards"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Bank:
    """A bank folder: `manifest.json` and `shards/*.parquet`.

    Attributes:
        root: the folder.
        manifest: the parsed manifest.json (config, inputs with sha256, shards, statistics).
    """

    root: Path
    manifest: dict[str, Any]

    @property
    def skeleton(self) -> Skeleton:
        return get_skeleton(self.manifest["config"]["skeleton"])

    @property
    def num_rows(self) -> int:
        return int(sum(s["rows"] for s in self.manifest["shards"]))

    @property
    def shard_paths(self) -> list[Path]:
        return [self.root / s["file"] for s in self.manifest["shards"]]

    @cached_property
    def dataset(self) -> Any:
        """The pyarrow dataset of all shards (for filters and column projection)."""
        from ..shards import open_dataset

        return open_dataset(self.shard_paths)

    def to_pandas(self, columns: Sequence[str] | None = None, filter: Any = None) -> Any:
        """The bank (or some columns / rows) as a pandas DataFrame; pose columns hold arrays."""
        return self.dataset.to_table(columns=list(columns) if columns else None, filter=filter).to_pandas()

    def iter_poses(
        self, columns: Sequence[str] = ("pose_2d",), batch_size: int = 262_144, filter: Any = None
    ) -> Iterator[dict[str, npt.NDArray[Any]]]:
        """Stream the bank in batches: dict column -> array; pose columns come as (n, J, 2|3) float32."""
        from ..shards import iter_batches, open_dataset
        from ..verify import check_table_values

        j = self.skeleton.num_joints
        shapes = {"pose_2d": (j, 2), "pose_3d": (j, 3)}
        # Shard by shard (pyarrow's batches never span files anyway), so that a bad value names its file.
        for path in self.shard_paths:
            first_row = 0
            for batch in iter_batches(open_dataset(path), columns, batch_size=batch_size, filter=filter):
                check_table_values(batch, path, first_row=first_row)
                first_row += batch.num_rows
                yield self._arrays(batch, columns, shapes)

    @staticmethod
    def _arrays(batch: Any, columns: Sequence[str], shapes: dict[str, tuple[int, int]]) -> dict[str, npt.NDArray[Any]]:
        from ..shards import to_numpy

        out: dict[str, npt.NDArray[Any]] = {}
        for name in columns:
            col = batch.column(name)
            out[name] = to_numpy(col, shapes[name]) if name in shapes else col.to_numpy(zero_copy_only=False)
        return out

    def take(self, rows: npt.NDArray[np.integer], columns: Sequence[str] = ("pose_2d", "pose_3d")) -> dict[str, npt.NDArray[Any]]:
        """Some rows (global indices in shard order, as `iter_poses` streams them) as arrays."""
        from ..verify import check_table_values

        j = self.skeleton.num_joints
        shapes = {"pose_2d": (j, 2), "pose_3d": (j, 3)}
        rows = np.asarray(rows, dtype=np.int64)
        table = self.dataset.take(rows, columns=list(columns))
        try:
            check_table_values(table, self.root)
        except InputError as err:  # name the shard and its row, not the bank
            raise self._locate(err, rows) from None
        return self._arrays(table, columns, shapes)

    def _locate(self, err: InputError, rows: npt.NDArray[np.int64]) -> InputError:
        """The error of a bad value among `rows`, naming the shard that holds it and its row there."""
        taken = int(str(err.record).split()[-1])  # "row N" of the taken table
        row = int(rows[taken])
        ends = np.cumsum([s["rows"] for s in self.manifest["shards"]])
        shard = int(np.searchsorted(ends, row, side="right"))
        start = int(ends[shard - 1]) if shard else 0
        return InputError(self.shard_paths[shard], err.message, record=f"row {row - start}")

    def poses(self, columns: Sequence[str] = ("pose_2d", "pose_3d"), filter: Any = None) -> tuple[npt.NDArray[Any], ...]:
        """Whole columns as arrays, in `columns` order (pose columns (N, J, 2|3) float32)."""
        parts: dict[str, list[npt.NDArray[Any]]] = {c: [] for c in columns}
        for batch in self.iter_poses(columns, filter=filter):
            for c in columns:
                parts[c].append(batch[c])
        return tuple(np.concatenate(parts[c]) if parts[c] else np.zeros(0) for c in columns)


def open_bank(path: str | Path, *, verify: bool = True) -> Bank:
    """Open a bank folder written by `build-bank`.

    Args:
        path: the folder.
        verify: check the shards against the manifest (posebank.verify.check_files: size, and
            sha256 when they total at most CHEAP_SHA256_BYTES). Batches read are always checked.

    Raises:
        InputError: no manifest.json (not a bank, or a build that has not finished), or a shard
            missing or damaged (named).
    """
    root = Path(path)
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise InputError(root, f"not a bank: no {MANIFEST} (was build-bank run to completion?)")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise InputError(manifest_path, f"not valid JSON ({err})") from None
    if not isinstance(manifest, dict) or manifest.get("kind") != "bank":
        kind = manifest.get("kind") if isinstance(manifest, dict) else None
        raise InputError(manifest_path, f"not a bank manifest (kind={kind!r})")
    if verify:
        from ..verify import check_files, manifest_files

        check_files(root, manifest_files(manifest))
    return Bank(root=root, manifest=manifest)
