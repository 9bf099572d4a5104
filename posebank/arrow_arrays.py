"""Arrow arrays from numpy arrays and Python lists, assembled from their buffers.

`pyarrow.array` imports pandas the first time it is called, numpy input included (0.2 s: a sixth of a
whole `posebank annotate` run on the benchmark bank, BENCHMARKS.md); `pyarrow.Array.from_buffers` does
not. This module builds the column types of posebank's schemas (posebank.shards) that way: fixed-width
numbers, bools, strings, and fixed-size or variable-length lists of those, with None as null.
Layouts: the Arrow columnar format (validity bitmaps LSB first, int32 offsets).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

_MAX_OFFSET = 2**31 - 1  # int32 offsets of string and list arrays


@dataclass(frozen=True)
class Nullable:
    """A column's values as a numpy array (N, ...) and the rows that hold one, `valid` (N,) bool: the
    other rows are null (whatever their values)."""

    values: npt.NDArray[Any]
    valid: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return len(self.valid)


def to_arrow(values: npt.ArrayLike | Sequence[Any] | Nullable, arrow_type: pa.DataType) -> pa.Array:
    """An Arrow array of `arrow_type` holding `values`.

    Args:
        values: a numpy array (N, ...) (no nulls; a fixed-size list type takes (N, size) or any shape of
            N x size elements, row-major; a list type takes (N, width): rows of one length), a Nullable of
            one, or a Python list of N items where None is a null (items of list types are sequences or 1D
            arrays).
        arrow_type: a number, bool or string type, or a list or fixed-size list of one.
    """
    if isinstance(values, Nullable):
        valid = np.asarray(values.valid, dtype=bool)
        if len(valid) != len(values.values):
            raise ValueError(f"{len(valid)} validity flags for {len(values.values)} rows")
        return _from_numpy(np.asarray(values.values), arrow_type, valid)
    if isinstance(values, np.ndarray) and values.dtype != object and not pa.types.is_string(arrow_type):
        return _from_numpy(values, arrow_type, None)
    items = list(values)
    valid = np.fromiter((v is not None for v in items), dtype=bool, count=len(items))
    if pa.types.is_string(arrow_type):
        return _strings(items, valid)
    if pa.types.is_fixed_size_list(arrow_type):
        size, dtype = arrow_type.list_size, arrow_type.value_type.to_pandas_dtype()
        filler = np.zeros(size, dtype=dtype)
        rows = [np.asarray(filler if v is None else v, dtype=dtype).reshape(-1) for v in items]
        if any(len(r) != size for r in rows):
            raise ValueError(f"items of {arrow_type} must hold {size} values each")
        child = _fixed_width(np.concatenate(rows) if rows else filler[:0], arrow_type.value_type, None)
        return pa.Array.from_buffers(arrow_type, len(items), [_validity(valid)], children=[child])
    if pa.types.is_list(arrow_type):
        lengths = np.fromiter((0 if v is None else len(v) for v in items), dtype=np.int64, count=len(items))
        child = to_arrow(list(itertools.chain.from_iterable(v for v in items if v is not None)), arrow_type.value_type)
        return pa.Array.from_buffers(arrow_type, len(items), [_validity(valid), _offsets(lengths)], children=[child])
    filled = [0 if v is None else v for v in items]
    return _fixed_width(np.asarray(filled) if filled else np.zeros(0), arrow_type, valid)


def _from_numpy(values: npt.NDArray[Any], arrow_type: pa.DataType, valid: npt.NDArray[np.bool_] | None) -> pa.Array:
    """A numpy array (N, ...) -> an Arrow array of N rows (valid (N,) bool, or None: no nulls)."""
    if pa.types.is_list(arrow_type):  # rows of one length
        rows = values.reshape(len(values), -1)
        child = _fixed_width(rows.reshape(-1), arrow_type.value_type, None)
        lengths = np.full(len(rows), rows.shape[1], dtype=np.int64)
        return pa.Array.from_buffers(arrow_type, len(rows), [_validity(valid), _offsets(lengths)], children=[child])
    if pa.types.is_fixed_size_list(arrow_type):
        n, size = values.size // arrow_type.list_size, arrow_type.list_size
        if values.size != n * size:
            raise ValueError(f"{values.shape} does not give rows of {size}")
        child = _fixed_width(values.reshape(-1), arrow_type.value_type, None)
        return pa.Array.from_buffers(arrow_type, n, [_validity(valid)], children=[child])
    return _fixed_width(values, arrow_type, valid)


def _fixed_width(values: npt.ArrayLike, arrow_type: pa.DataType, valid: npt.NDArray[np.bool_] | None) -> pa.Array:
    """Numbers or bools (N,) -> an Arrow array; valid (N,) bool or None (no nulls)."""
    n = len(values)
    if pa.types.is_boolean(arrow_type):
        data = np.packbits(np.asarray(values, dtype=bool), bitorder="little")
    elif pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type):
        data = np.ascontiguousarray(values, dtype=arrow_type.to_pandas_dtype())  # a numpy dtype; imports nothing
    else:
        raise TypeError(f"no buffer layout here for Arrow type {arrow_type}")
    return pa.Array.from_buffers(arrow_type, n, [_validity(valid), pa.py_buffer(data)])


def _strings(items: list[Any], valid: npt.NDArray[np.bool_]) -> pa.Array:
    encoded = [b"" if v is None else str(v).encode() for v in items]
    lengths = np.fromiter((len(b) for b in encoded), dtype=np.int64, count=len(encoded))
    return pa.Array.from_buffers(pa.string(), len(items), [_validity(valid), _offsets(lengths), pa.py_buffer(b"".join(encoded))])


def _offsets(lengths: npt.NDArray[np.int64]) -> pa.Buffer:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if offsets[-1] > _MAX_OFFSET:
        raise ValueError(f"{offsets[-1]} values do not fit one Arrow array's int32 offsets; write smaller shards")
    return pa.py_buffer(offsets.astype(np.int32))


def _validity(valid: npt.NDArray[np.bool_] | None) -> pa.Buffer | None:
    """The validity bitmap of `valid` (N,), or None when nothing is null (Arrow's way to say so)."""
    if valid is None or valid.all():
        return None
    return pa.py_buffer(np.packbits(valid, bitorder="little"))
