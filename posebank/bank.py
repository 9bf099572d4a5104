"""Open a projection bank built by `posebank build-bank` and get its arrays.

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

from .errors import InputError
from .skeleton import Skeleton, get_skeleton

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
        from .shards import open_dataset

        return open_dataset(self.shard_paths)

    def to_pandas(self, columns: Sequence[str] | None = None, filter: Any = None) -> Any:
        """The bank (or some columns / rows) as a pandas DataFrame; pose columns hold arrays."""
        return self.dataset.to_table(columns=list(columns) if columns else None, filter=filter).to_pandas()

    def iter_poses(
        self, columns: Sequence[str] = ("pose_2d",), batch_size: int = 262_144, filter: Any = None
    ) -> Iterator[dict[str, npt.NDArray[Any]]]:
        """Stream the bank in batches: dict column -> array; pose columns come as (n, J, 2|3) float32."""
        from .shards import iter_batches, to_numpy

        j = self.skeleton.num_joints
        shapes = {"pose_2d": (j, 2), "pose_3d": (j, 3)}
        for batch in iter_batches(self.dataset, columns, batch_size=batch_size, filter=filter):
            out: dict[str, npt.NDArray[Any]] = {}
            for name in columns:
                col = batch.column(name)
                out[name] = to_numpy(col, shapes[name]) if name in shapes else col.to_numpy(zero_copy_only=False)
            yield out

    def take(self, rows: npt.NDArray[np.integer], columns: Sequence[str] = ("pose_2d", "pose_3d")) -> dict[str, npt.NDArray[Any]]:
        """Some rows (global indices in shard order, as `iter_poses` streams them) as arrays."""
        from .shards import to_numpy

        j = self.skeleton.num_joints
        shapes = {"pose_2d": (j, 2), "pose_3d": (j, 3)}
        table = self.dataset.take(np.asarray(rows, dtype=np.int64), columns=list(columns))
        return {
            c: to_numpy(table.column(c), shapes[c]) if c in shapes else table.column(c).to_numpy()
            for c in columns
        }

    def poses(self, columns: Sequence[str] = ("pose_2d", "pose_3d"), filter: Any = None) -> tuple[npt.NDArray[Any], ...]:
        """Whole columns as arrays, in `columns` order (pose columns (N, J, 2|3) float32)."""
        parts: dict[str, list[npt.NDArray[Any]]] = {c: [] for c in columns}
        for batch in self.iter_poses(columns, filter=filter):
            for c in columns:
                parts[c].append(batch[c])
        return tuple(np.concatenate(parts[c]) if parts[c] else np.zeros(0) for c in columns)


def open_bank(path: str | Path) -> Bank:
    """Open a bank folder written by `build-bank`.

    Raises:
        InputError: no manifest.json (not a bank, or a build that has not finished).
    """
    root = Path(path)
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise InputError(root, f"not a bank: no {MANIFEST} (was build-bank run to completion?)")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if manifest.get("kind") != "bank":
        raise InputError(manifest_path, f"not a bank manifest (kind={manifest.get('kind')!r})")
    return Bank(root=root, manifest=manifest)
