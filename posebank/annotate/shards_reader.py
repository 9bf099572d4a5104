"""Read annotation shards (`annotate`, `synth`, `annotate h36m`) back as arrays, checked as they are read.

The bank has `Bank.poses()`; this is the same for the people of annotation shards: pose columns come
back as (N, J, 2) / (N, J, 3) float32 arrays instead of flat Parquet lists, masks as (N, J) bool, boxes
as (N, 4), nulls as NaN (or None for strings). Shards inside an output folder are checked against its
manifest (posebank.verify.check_output_files) and every batch's poses for finite, plausible values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import InputError
from ..skeleton import Skeleton, get_skeleton

# Fixed-size list columns -> their per-row shape, J = the skeleton's joints (None: source joints, Js).
_POSE_SHAPES: dict[str, tuple[str | int, ...]] = {
    "pose_2d": ("J", 2),  # px (x, y), image frame, completed
    "pose_3d": ("J", 3),  # m, the matched bank view's camera frame (x right, y down, z forward), body-centred
    "visible": ("J",),  # bool: the joint was annotated (the query mask)
    "occluded": ("J",),  # bool: the source's occlusion flag
    "box_full": (4,),  # px (x0, y0, x1, y1), 10% margin
    "box_upper": (4,),
    "head_box": (4,),
    "source_pose_2d": ("Js", 2),  # px (x, y) in the source's joint order
}


@dataclass(frozen=True)
class AnnotationShards:
    """The annotation shards of one folder (or file), with what their metadata says.

    Attributes:
        path: the folder or file opened.
        files: the Parquet files, in reading order.
        metadata: the first shard's posebank metadata (posebank.shards.read_metadata): skeleton,
            joint_names, source_joint_names, units, frame, config, annotation_file, version, ...
        skeleton: the canonical skeleton of pose_2d / pose_3d (J joints).
        num_rows: people in all files.
    """

    path: Path
    files: tuple[Path, ...]
    metadata: dict[str, Any]
    skeleton: Skeleton
    num_rows: int

    @property
    def column_names(self) -> tuple[str, ...]:
        from ..shards import open_dataset

        return tuple(open_dataset(list(self.files)).schema.names)

    def table(self, columns: Sequence[str] | None = None, *, split: str | None = None) -> Any:
        """The rows (all, or those of `split`) as one pyarrow Table, each batch checked as it is read.

        Raises:
            InputError: a column the shards do not have, or damaged values (naming the file and row).
        """
        import pyarrow as pa

        from ..shards import iter_batches, open_dataset
        from ..verify import check_table_values

        names = self.column_names
        wanted = list(columns) if columns is not None else list(names)
        missing = [c for c in wanted if c not in names]
        if missing:
            raise InputError(self.path, f"the shards have no column(s) {', '.join(missing)} (written before they "
                             "existed? rerun the command that wrote them)")  # fmt: skip
        # The checks need the masks beside the poses they check.
        read = wanted + [c for c in ("visible", "split") if c in names and c not in wanted]
        batches = []
        for path in self.files:
            first_row = 0
            for batch in iter_batches(open_dataset(path), columns=read):
                check_table_values(batch, path, first_row=first_row)
                first_row += batch.num_rows
                if split is not None:
                    batch = batch.filter(pa.array(np.asarray(batch.column("split").to_pylist()) == split))
                batches.append(batch.select(wanted))
        if not batches:
            return open_dataset(list(self.files)).schema.empty_table().select(wanted)
        return pa.Table.from_batches(batches)

    def poses(self, columns: Sequence[str] = ("pose_2d", "pose_3d"), *, split: str | None = None) -> tuple[np.ndarray, ...]:
        """Whole columns as arrays, in `columns` order (rows of `split` only when given).

        Shapes (N people, J = skeleton joints, Js = source joints): pose_2d (N, J, 2) float32 px;
        pose_3d (N, J, 3) float32 m (NaN rows: unmatched people); visible, occluded (N, J) bool;
        box_full, box_upper, head_box (N, 4) float32 px (NaN: null); source_pose_2d (N, Js, 2) float32
        px (NaN: not annotated, or no source pose); numeric columns (N,) (float64 with NaN for nulls
        where the column has nulls); string columns (N,) object; flags a list of lists.
        """
        table = self.table(columns, split=split)
        return tuple(self._array(table.column(c), c) for c in columns)

    def _array(self, column: Any, name: str) -> Any:
        import pyarrow as pa

        column = column.combine_chunks() if hasattr(column, "combine_chunks") else column
        if name in _POSE_SHAPES:
            shape = tuple(self._dim(d) for d in _POSE_SHAPES[name])
            return _fixed(column, shape, bool if pa.types.is_boolean(column.type.value_type) else np.float32)
        if pa.types.is_list(column.type) or pa.types.is_string(column.type):
            values = column.to_pylist()
            return values if pa.types.is_list(column.type) else np.asarray(values, dtype=object)
        if column.null_count:
            return np.asarray([np.nan if v is None else v for v in column.to_pylist()], dtype=np.float64)
        return column.to_numpy(zero_copy_only=False)

    def _dim(self, d: str | int) -> int:
        if d == "J":
            return self.skeleton.num_joints
        if d == "Js":
            names = self.metadata.get("source_joint_names")
            if not names:
                raise InputError(self.path, "the shards' metadata has no source_joint_names: source_pose_2d "
                                 "cannot be shaped (synthetic shards have no source pose)")  # fmt: skip
            return len(names)
        return int(d)


def _fixed(column: Any, shape: tuple[int, ...], dtype: Any) -> npt.NDArray[Any]:
    """A (nullable, fixed- or variable-size) list column -> (N, *shape); null rows NaN (False for bool)."""
    n = len(column)
    out = np.full((n, *shape), False if dtype is bool else np.nan, dtype=dtype)
    valid = column.is_valid().to_numpy(zero_copy_only=False).astype(bool)
    if valid.any():
        values = column.filter(column.is_valid()).flatten().to_numpy(zero_copy_only=False)
        out[valid] = np.asarray(values, dtype=dtype).reshape((int(valid.sum()), *shape))
    return out


def open_annotations(path: str | Path, *, verify: bool = True) -> AnnotationShards:
    """Open annotation shards: an output folder of `annotate`/`synth`, its annotations/ folder, or files.

    Args:
        path: the folder (or one Parquet file).
        verify: check the files against the output's manifest (size; sha256 when they total at most
            1 GiB; posebank.verify.check_output_files). Values are always checked as they are read.

    Raises:
        InputError: no Parquet files, files of another kind (a bank, anchors), a damaged or unlisted
            file, or no skeleton in the metadata.
    """
    from ..shards import num_rows, open_dataset, read_metadata
    from ..verify import check_output_files

    root = Path(path)
    target = root / "annotations" if (root / "annotations").is_dir() else root
    files = tuple(Path(f) for f in open_dataset(target).files)
    if verify:
        check_output_files(files)
    metadata = read_metadata(files[0])
    names = open_dataset(list(files)).schema.names
    if "visible" not in names or "pose_2d" not in names:
        raise InputError(files[0], f"not annotation shards (kind {metadata.get('kind', 'unknown')!r}: no pose_2d "
                         "and visible columns)")  # fmt: skip
    skeleton_name = metadata.get("skeleton")
    if isinstance(skeleton_name, dict):  # synth's manifest style {"name": ..., "joint_names": [...]}
        skeleton_name = skeleton_name.get("name")
    if not skeleton_name:
        raise InputError(files[0], "the shards' metadata names no skeleton")
    skeleton = get_skeleton(str(skeleton_name))
    return AnnotationShards(root, files, metadata, skeleton, sum(num_rows(f) for f in files))
