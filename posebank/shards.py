"""Parquet shards: the explicit schemas, atomic writes, reading back and validation.

The only module of posebank that imports pyarrow. Poses are float32 fixed-size lists, row-major
(joint, coordinate), so pandas, polars and DuckDB read them without help.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    import pyarrow.dataset as ds

from .arrow_arrays import Nullable, to_arrow
from .errors import InputError
from .provenance import atomic_path

SCHEMA_VERSION = 1
META_PREFIX = "posebank."


def bank_schema(num_joints: int) -> pa.Schema:
    """Schema of the bank table: one row per (pose, view). Angles in degrees, poses in metres."""
    return pa.schema(
        [
            pa.field("pose_id", pa.int64(), nullable=False),  # stable: hash of source/subject/sequence/frame
            pa.field("view_id", pa.int32(), nullable=False),  # 0..views-1 for each pose
            pa.field("source", pa.string(), nullable=False),  # cmu | hdm05 | poseprior | bvh
            pa.field("subject", pa.string(), nullable=False),
            pa.field("sequence", pa.string(), nullable=False),
            pa.field("frame", pa.int32(), nullable=False),  # the source's own frame number
            pa.field("azimuth_deg", pa.float32(), nullable=False),
            pa.field("elevation_deg", pa.float32(), nullable=False),
            pa.field("roll_deg", pa.float32(), nullable=False),
            pa.field("pose_3d", pa.list_(pa.float32(), num_joints * 3), nullable=False),  # camera frame, m
            pa.field("pose_2d", pa.list_(pa.float32(), num_joints * 2), nullable=False),  # orthographic, m
        ]
    )


def anchors_schema(num_joints: int) -> pa.Schema:
    """Schema of the anchor-pose table (`posebank anchors`): one row per anchor."""
    return pa.schema(
        [
            pa.field("anchor_id", pa.int32(), nullable=False),
            pa.field("pose_3d", pa.list_(pa.float32(), num_joints * 3), nullable=False),  # body-centred, m
            pa.field("pose_2d_full", pa.list_(pa.float32(), num_joints * 2), nullable=False),  # [0,1] in its box
            pa.field("pose_2d_upper", pa.list_(pa.float32(), num_joints * 2), nullable=False),  # upper-body box
            pa.field("members", pa.int64(), nullable=False),  # bank poses in the cluster
        ]
    )


def annotations_schema(num_joints: int) -> pa.Schema:
    """Schema of annotation shards (`annotate`, `synth`): one row per person.

    Poses in pixels (origin at the image's top-left corner) and metres (camera frame, body-centred).
    Match columns are null for people that were not matched (too few joints) and for synthetic data.
    Boxes are (x0, y0, x1, y1) pixels with a 10% margin.

    Pose columns (flattened row-major; posebank.annotate.shards_reader.open_annotations gives arrays):
        pose_2d: (J, 2) float32 px (x, y), image frame (origin top-left, x right, y down), in the
            source's pixel convention (MPII/LSP 1-based, COCO 0-based); completed (NaN only where a
            person could not be completed); the annotated joints keep their source values.
        visible / occluded: (J,) bool; pose_3d: (J, 3) float32 m, the matched bank view's camera frame
            (x right, y down, z forward), centred on the mean of hips and shoulders; null when unmatched.
        source_pose_2d: (Js, 2) px in the source's own joint order (metadata source_joint_names).
    """
    box = pa.list_(pa.float32(), 4)
    return pa.schema(
        [
            pa.field("dataset", pa.string(), nullable=False),  # mpii | lsp | coco | synth
            pa.field("split", pa.string(), nullable=False),  # train | val | test | ...
            pa.field("image", pa.string(), nullable=False),  # path relative to the images root
            pa.field("image_width", pa.int32(), nullable=True),
            pa.field("image_height", pa.int32(), nullable=True),
            pa.field("person", pa.int32(), nullable=False),  # index of the person in its image
            pa.field("pose_2d", pa.list_(pa.float32(), num_joints * 2), nullable=False),  # (J, 2) completed, px
            pa.field("visible", pa.list_(pa.bool_(), num_joints), nullable=False),  # (J,) annotated (the query mask)
            pa.field("occluded", pa.list_(pa.bool_(), num_joints), nullable=False),  # (J,) the source's flag
            pa.field("pose_3d", pa.list_(pa.float32(), num_joints * 3), nullable=True),  # (J, 3) pseudo ground truth, m
            pa.field("match_pose_id", pa.int64(), nullable=True),
            pa.field("match_view_id", pa.int32(), nullable=True),
            pa.field("match_distance", pa.float32(), nullable=True),
            pa.field("match_spread", pa.float32(), nullable=True),  # top-k disagreement, m (3D)
            pa.field("error_estimate", pa.float32(), nullable=True),  # expected 3D error of pose_3d, mm (ranks people)
            pa.field("box_full", box, nullable=False),
            pa.field("box_upper", box, nullable=False),
            pa.field("head_box", box, nullable=True),  # MPII, for PCKh
            pa.field("head_size", pa.float32(), nullable=True),  # PCKh normaliser, px (MPII: 0.6 x head-box diagonal)
            pa.field("flags", pa.list_(pa.string()), nullable=False),  # e.g. too_few_joints, left_right_swap
            pa.field("source_pose_2d", pa.list_(pa.float32()), nullable=True),  # (Js, 2) original px, source order
            # Source ids (SOURCE_ID_COLUMNS), null where the source has none (synth, h36m):
            pa.field("source_format", pa.string(), nullable=True),  # the layout read: mpii_release_mat, coco_json, ...
            pa.field("source_row", pa.int64(), nullable=True),  # 0-based position among the file's people
            pa.field("source_image_id", pa.int64(), nullable=True),  # COCO image_id, MPII annolist index, LSP index
            pa.field("source_annotation_id", pa.int64(), nullable=True),  # COCO annotation id
        ]
    )


# Added to annotations_schema after its first release: shards written before lack them, and readers
# (posebank verify included) accept their absence. A person joins back to its source by
# (source_image_id, person) for MPII (annolist index, annorect index), source_annotation_id for COCO,
# source_image_id for LSP/LSPET; `image` names the file in every case.
SOURCE_ID_COLUMNS = ("source_format", "source_row", "source_image_id", "source_annotation_id")


def predictions_schema(num_joints: int) -> pa.Schema:
    """Schema of predictions.parquet (`posebank predict`): one row per detected person.

    pose_2d: (J, 2) float32 px, image frame (origin top-left, x right, y down); pose_3d: (J, 3)
    float32 m, camera frame (x right, y down, z forward), body-centred; box: x0, y0, x1, y1 px.
    """
    return pa.schema(
        [
            pa.field("image", pa.string(), nullable=False),  # the image path as given
            pa.field("image_width", pa.int32(), nullable=False),
            pa.field("image_height", pa.int32(), nullable=False),
            pa.field("person", pa.int32(), nullable=False),  # rank in the image, 0 = best score
            pa.field("score", pa.float32(), nullable=False),  # rescored class score (NMS) or sum over the mode (PPI)
            pa.field("label", pa.int32(), nullable=False),  # pose class 1..2K (K+1..2K: upper-body anchors)
            pa.field("box", pa.list_(pa.float32(), 4), nullable=False),  # pose box x0, y0, x1, y1 px
            pa.field("pose_2d", pa.list_(pa.float32(), num_joints * 2), nullable=False),  # px
            pa.field("pose_3d", pa.list_(pa.float32(), num_joints * 3), nullable=False),  # m, body-centred
        ]
    )


def with_metadata(schema: pa.Schema, metadata: dict[str, Any]) -> pa.Schema:
    """Attach posebank metadata (values JSON-encoded, keys prefixed "posebank.") to a schema."""
    meta = {f"{META_PREFIX}{k}".encode(): json.dumps(v).encode() for k, v in metadata.items()}
    meta[f"{META_PREFIX}schema_version".encode()] = str(SCHEMA_VERSION).encode()
    return schema.with_metadata(meta)


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The posebank metadata of one Parquet file (without reading its rows)."""
    schema = pq.read_schema(path)
    out: dict[str, Any] = {}
    for k, v in (schema.metadata or {}).items():
        key = k.decode()
        if key.startswith(META_PREFIX):
            out[key[len(META_PREFIX) :]] = json.loads(v.decode())
    return out


def to_numpy(column: pa.ChunkedArray | pa.Array, shape: Sequence[int]) -> npt.NDArray[np.float32]:
    """fixed_size_list<float32> column -> (N, *shape) float32 array."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    values = column.flatten().to_numpy(zero_copy_only=False)
    return values.reshape((len(column), *shape))


def _column(field: pa.Field, values: Any, n: int) -> pa.Array:
    """One column of `field`'s type from numpy arrays or Python lists (None: all nulls)."""
    if values is None:
        if not field.nullable:
            raise ValueError(f"column {field.name!r} is not nullable")
        return pa.nulls(n, field.type)
    try:
        return to_arrow(values, field.type)
    except (ValueError, TypeError) as e:
        raise ValueError(f"column {field.name!r}: {e}") from e


def make_table(schema: pa.Schema, columns: dict[str, Any], metadata: dict[str, Any]) -> pa.Table:
    """A table of `schema` (every field must be given) with posebank metadata attached.

    Args:
        schema: one of this module's schemas.
        columns: field name -> values: (N, ...) numpy arrays (fixed-size lists are flattened
            row-major), posebank.arrow_arrays.Nullable (numpy arrays with null rows), Python lists
            (strings, variable lists; None items are nulls), or None for an all-null column.
        metadata: the provenance (see `with_metadata`).
    """
    missing = [f.name for f in schema if f.name not in columns]
    extra = [name for name in columns if name not in schema.names]
    if missing or extra:
        raise ValueError(f"columns missing {missing}, unknown {extra}")
    def rows(field: pa.Field, values: Any) -> int:
        if isinstance(values, Nullable):
            return len(values)
        if pa.types.is_fixed_size_list(field.type) and not isinstance(values, list):
            return int(np.asarray(values).size // field.type.list_size)
        return len(values)

    lengths = {rows(f, columns[f.name]) for f in schema if columns[f.name] is not None}
    if len(lengths) > 1:
        raise ValueError(f"columns of different lengths {sorted(lengths)}")
    n = lengths.pop() if lengths else 0
    arrays = [_column(f, columns[f.name], n) for f in schema]
    return pa.Table.from_arrays(arrays, schema=with_metadata(schema, metadata))


def num_rows(path: str | Path) -> int:
    """Rows of a Parquet file, from its footer."""
    return int(pq.ParquetFile(path).metadata.num_rows)


def read_table(path: str | Path, columns: Sequence[str] | None = None) -> pa.Table:
    """Read one Parquet file (all columns, or some). Through ParquetFile: pq.read_table goes through
    pyarrow.dataset, whose import imports pandas (0.2 s of every command that reads a shard)."""
    with pq.ParquetFile(path) as f:
        return f.read(columns=list(columns) if columns else None)


def write_table(table: pa.Table, path: str | Path, *, row_group_size: int = 100_000) -> None:
    """Write `table` to `path` as zstd-compressed Parquet, in place (for a path that is already a
    temporary file: posebank.jobs.OutputFolder.write). The same table gives the same bytes."""
    pq.write_table(table, path, compression="zstd", row_group_size=row_group_size)


def write_table_atomic(table: pa.Table, path: str | Path, *, row_group_size: int = 100_000) -> None:
    """Write `table` to `path` (zstd-compressed Parquet) via a temporary file and a rename."""
    with atomic_path(path) as tmp:
        write_table(table, tmp, row_group_size=row_group_size)


def validate(table: pa.Table, schema: pa.Schema, *, path: str | Path = "", optional: Sequence[str] = ()) -> None:
    """Check that `table` has exactly the columns and types of `schema`.

    `optional`: columns that may be absent (added to the schema later, e.g. SOURCE_ID_COLUMNS); when
    present their type is checked like the others'.

    Raises:
        InputError: naming the file and the first mismatching column.
    """
    for field in schema:
        if field.name not in table.column_names:
            if field.name in optional:
                continue
            raise InputError(path, f"missing column {field.name!r}")
        got = table.schema.field(field.name).type
        if got != field.type:
            raise InputError(path, f"column {field.name!r} has type {got}, expected {field.type}")


def open_dataset(paths: str | Path | Sequence[str | Path]) -> ds.Dataset:
    """A pyarrow dataset over Parquet files (a shard folder, one file or a list of files)."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files: list[str] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(str(f) for f in p.rglob("*.parquet") if not f.name.startswith((".", "_")))
        elif p.is_file():
            files.append(str(p))
        else:
            raise InputError(p, "no such file or folder")
    if not files:
        raise InputError(paths[0], "no Parquet files found")
    import pyarrow.dataset as ds  # here, not at the top: its import costs ~0.5 s that most commands never need

    return ds.dataset(files, format="parquet")


def iter_batches(
    dataset: ds.Dataset, columns: Sequence[str] | None = None, batch_size: int = 65_536, filter: Any = None
) -> Iterator[pa.RecordBatch]:
    """Stream record batches in file order (memory stays bounded whatever the dataset's size)."""
    yield from dataset.to_batches(columns=list(columns) if columns else None, batch_size=batch_size, filter=filter)
