"""Arrow arrays assembled from buffers equal pyarrow.array's, and building them does not import pandas."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest

from posebank.arrow_arrays import Nullable, to_arrow
from posebank.shards import annotations_schema, make_table

CASES = [
    (np.arange(5, dtype=np.int64), pa.int32()),
    ([1, None, 3], pa.int64()),
    ([1.5, None, -2.0], pa.float32()),
    (np.array([True, False, True, True, False, False, True, False, True]), pa.bool_()),  # more than one byte
    (["a", None, "ümlaut", ""], pa.string()),
    (np.array(["x", "yy"]), pa.string()),
    (np.arange(12, dtype=np.float64).reshape(3, 2, 2), pa.list_(pa.float32(), 4)),
    (np.array([[True, False], [False, True]]), pa.list_(pa.bool_(), 2)),
    ([[1, 2, 3, 4], None, np.array([5, 6, 7, 8.5])], pa.list_(pa.float32(), 4)),
    ([["a", "b"], [], ["c"], None], pa.list_(pa.string())),
    ([[1.0, 2.0], None, [3.0]], pa.list_(pa.float32())),
    ([], pa.list_(pa.string())),
    ([], pa.string()),
    ([], pa.int32()),
    (np.zeros((0, 4)), pa.list_(pa.float32(), 4)),
    ([], pa.list_(pa.float32(), 4)),
]


def _as_python(values, arrow_type):
    if isinstance(values, np.ndarray):
        return values.reshape(len(values), arrow_type.list_size).tolist() if pa.types.is_fixed_size_list(arrow_type) else values.tolist()
    return [None if v is None else (list(v) if isinstance(v, np.ndarray) else v) for v in values]


@pytest.mark.parametrize(("values", "arrow_type"), CASES)
def test_the_arrays_equal_pyarrow_arrays(values, arrow_type: pa.DataType) -> None:
    built = to_arrow(values, arrow_type)
    built.validate(full=True)
    assert built.equals(pa.array(_as_python(values, arrow_type), type=arrow_type))


def test_numpy_arrays_with_null_rows_and_rows_of_one_length() -> None:
    values = np.array([[1.0, 2.0], [np.nan, 4.0], [5.0, 6.0]])
    valid = ~np.isnan(values).any(axis=1)
    cases = [
        (Nullable(values, valid), pa.list_(pa.float32(), 2), [[1.0, 2.0], None, [5.0, 6.0]]),
        (Nullable(values[:, 0], valid), pa.float32(), [1.0, None, 5.0]),
        (Nullable(np.array([3, -1, 7]), np.array([True, False, True])), pa.int64(), [3, None, 7]),
        (values, pa.list_(pa.float32()), values.tolist()),  # a variable-length list type, rows of one length
        (Nullable(values, valid), pa.list_(pa.float32()), [[1.0, 2.0], None, [5.0, 6.0]]),
    ]
    for given, arrow_type, python in cases:
        built = to_arrow(given, arrow_type)
        built.validate(full=True)
        assert built.to_pylist()[0] == pa.array(python, type=arrow_type).to_pylist()[0]
        assert [v is None for v in built.to_pylist()] == [v is None for v in python]
        kept = [v for v in python if v is not None]
        got = [v for v in built.to_pylist() if v is not None]
        np.testing.assert_array_equal(np.array(got, dtype=float), np.array(kept, dtype=float))
    with pytest.raises(ValueError, match="validity flags"):
        to_arrow(Nullable(values, valid[:2]), pa.list_(pa.float32(), 2))


def test_wrong_sizes_and_types_are_refused() -> None:
    with pytest.raises(ValueError, match="rows of 4"):
        to_arrow(np.zeros(6), pa.list_(pa.float32(), 4))
    with pytest.raises(ValueError, match="4 values each"):
        to_arrow([[1.0, 2.0]], pa.list_(pa.float32(), 4))
    with pytest.raises(TypeError, match="timestamp"):
        to_arrow(np.zeros(2), pa.timestamp("s"))
    with pytest.raises(ValueError, match="column 'head_box'"):  # make_table names the column
        make_table(annotations_schema(13), _columns(1) | {"head_box": [[1.0]]}, {})


def _columns(n: int) -> dict:
    """The annotation columns of n people: the required ones filled, the nullable ones all null."""
    columns = {f.name: None for f in annotations_schema(13) if f.nullable}
    columns.update(dataset=["mpii"] * n, split=["train"] * n, image=[f"{i}.jpg" for i in range(n)], person=np.arange(n),
                   pose_2d=np.zeros((n, 13, 2)), visible=np.ones((n, 13), bool), occluded=np.zeros((n, 13), bool),
                   box_full=np.zeros((n, 4)), box_upper=np.zeros((n, 4)), flags=[[] for _ in range(n)])
    return columns


def test_writing_a_shard_does_not_import_pandas(tmp_path) -> None:
    """pyarrow.array and pq.read_table import pandas (0.2 s); the shard writer and reader use neither."""
    code = f"""
import sys, numpy as np
from posebank.shards import annotations_schema, make_table, read_table, write_table
schema = annotations_schema(13)
columns = {{f.name: None for f in schema if f.nullable}}
n = 3
columns.update(dataset=["mpii"] * n, split=["train"] * n, image=["a.jpg", "b.jpg", "c.jpg"], person=np.arange(n),
               pose_2d=np.zeros((n, 13, 2)), visible=np.ones((n, 13), bool), occluded=np.zeros((n, 13), bool),
               box_full=np.zeros((n, 4)), box_upper=np.zeros((n, 4)), flags=[["a"], [], ["b", "c"]],
               match_distance=[0.1, None, 0.3])
missing = [f.name for f in schema if f.name not in columns]
assert not missing, missing
write_table(make_table(schema, columns, {{"kind": "test"}}), r"{tmp_path / 'a.parquet'}")
t = read_table(r"{tmp_path / 'a.parquet'}", columns=["flags", "match_distance"])
assert t.column("flags").to_pylist() == [["a"], [], ["b", "c"]], t
assert t.column("match_distance").to_pylist()[1] is None
print("pandas" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stdout + out.stderr
