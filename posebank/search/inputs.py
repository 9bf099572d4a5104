"""Checks and conversions at the boundary of masked search: shapes, dtypes, NaNs, masks.

Everything behind this module sees float32 C-contiguous arrays of known shape, masks with at least
two joints, and queries already normalised over their mask (the query side of paper eq. 9). The
bank side is prepared in prepared.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..geometry import masked_centre_scale

MIN_MASK_JOINTS = 2  # fewer joints have no shape: the normalised vector is 0 or undefined


def as_poses_2d(poses: npt.ArrayLike, name: str, num_joints: int | None = None) -> npt.NDArray[np.float32]:
    """(N, J, 2) float32 C-contiguous view or copy of `poses` given as (N, J, 2) or (N, 2J).

    (N, 2J) rows are row-major (joint, coord): x0, y0, x1, y1, ... as in the bank's `pose_2d` column.
    A copy is made only when the dtype or layout requires one.
    """
    arr = np.asarray(poses)
    if arr.ndim == 2 and arr.shape[1] % 2 == 0:
        arr = arr.reshape(arr.shape[0], arr.shape[1] // 2, 2)
    if arr.ndim != 3 or arr.shape[2] != 2:
        raise ValueError(f"{name} must have shape (N, J, 2) or (N, 2J), got {np.shape(poses)}")
    if num_joints is not None and arr.shape[1] != num_joints:
        raise ValueError(f"{name} has {arr.shape[1]} joints but the bank has {num_joints}: shape {np.shape(poses)}")
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def as_masks(masks: npt.ArrayLike, num_queries: int, num_joints: int) -> npt.NDArray[np.bool_]:
    """(Q, J) bool masks; accepts bool or 0/1 integers. Raises ValueError for anything else."""
    arr = np.asarray(masks)
    if arr.shape != (num_queries, num_joints):
        raise ValueError(f"masks must have shape (Q, J) = ({num_queries}, {num_joints}), got {arr.shape}")
    if arr.dtype != np.bool_:
        if not np.issubdtype(arr.dtype, np.integer) or not np.isin(arr, (0, 1)).all():
            raise ValueError(f"masks must be bool (or 0/1 integers), got dtype {arr.dtype}")
        arr = arr.astype(bool)
    return np.ascontiguousarray(arr)


def _first(indices: npt.NDArray[np.intp], limit: int = 5) -> str:
    shown = ", ".join(str(int(i)) for i in indices[:limit])
    return shown + (", ..." if indices.size > limit else "")


def check_finite_bank(poses_2d: npt.NDArray[np.float32], name: str = "bank_2d") -> None:
    """Raise ValueError naming the first rows of `poses_2d` (N, J, 2) that hold NaN or inf."""
    bad_rows = np.flatnonzero(~np.isfinite(poses_2d).all(axis=(1, 2)))
    if bad_rows.size:
        raise ValueError(f"{name} has NaN or inf in {bad_rows.size} row(s): {_first(bad_rows)}")


@dataclass(frozen=True, eq=False)
class QueryBatch:
    """Validated queries, normalised over their masks and grouped by mask.

    Attributes:
        qbar: (Q, 2J) float32, row-major (joint, coord): the query centred on the mean of its masked
            joints and scaled to unit L2 norm over them; exactly 0 outside the mask.
        masks: (Q, J) bool, the joints that count.
        group: (Q,) int64 index of each query's mask in `unique_masks`.
        unique_masks: (M, J) bool, the distinct masks (sorted by their packed bits).
    """

    qbar: npt.NDArray[np.float32]
    masks: npt.NDArray[np.bool_]
    group: npt.NDArray[np.int64]
    unique_masks: npt.NDArray[np.bool_]

    @property
    def num_queries(self) -> int:
        return self.qbar.shape[0]

    @property
    def num_joints(self) -> int:
        return self.masks.shape[1]

    def subset(self, rows: slice | npt.NDArray[np.intp]) -> QueryBatch:
        """The queries `rows`, keeping the same unique_masks (group indices stay valid)."""
        return QueryBatch(self.qbar[rows], self.masks[rows], self.group[rows], self.unique_masks)


def normalise_masked(
    poses_2d: npt.NDArray[np.floating], masks: npt.NDArray[np.bool_]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """n_S(x): poses (..., J, 2) centred on the mean of their masked joints, scaled to unit norm over them.

    Args:
        poses_2d: (..., J, 2) any float dtype; values outside the mask are ignored (may be NaN).
        masks: (..., J) bool, at least one True per pose.

    Returns:
        normalised: (..., J, 2) float64, zero outside the mask (0 everywhere where the spread is 0).
        spread: (...) float64, the norm over the mask before scaling, ||x_S - mean_S(x)||.
    """
    centre, spread = masked_centre_scale(poses_2d, masks)
    m = np.asarray(masks, dtype=bool)[..., None]
    centred = np.where(m, np.asarray(poses_2d, dtype=np.float64) - centre[..., None, :], 0.0)
    scale = np.where(spread > 0, spread, 1.0)[..., None, None]
    return centred / scale, spread


def prepare_queries(
    queries_2d: npt.ArrayLike, masks: npt.ArrayLike, num_joints: int
) -> QueryBatch:
    """Validate queries and masks, normalise each query over its mask, group queries by mask.

    Args:
        queries_2d: (Q, J, 2) or (Q, 2J) 2D poses, any units (pixels); joints outside the mask may be NaN.
        masks: (Q, J) bool, the annotated joints of each query.
        num_joints: J of the bank.

    Raises:
        ValueError: wrong shape or dtype, a mask with fewer than 2 joints, NaN/inf in a masked joint,
            or a query whose masked joints all coincide (no shape to match).
    """
    raw = np.asarray(queries_2d)
    if raw.ndim == 2 and raw.shape[1] % 2 == 0:
        raw = raw.reshape(raw.shape[0], raw.shape[1] // 2, 2)
    if raw.ndim != 3 or raw.shape[1:] != (num_joints, 2):
        raise ValueError(
            f"queries_2d must have shape (Q, {num_joints}, 2) or (Q, {2 * num_joints}), got {np.shape(queries_2d)}"
        )
    if not np.issubdtype(raw.dtype, np.number) or np.iscomplexobj(raw):
        raise ValueError(f"queries_2d must hold real numbers, got dtype {raw.dtype}")
    masks_b = as_masks(masks, raw.shape[0], num_joints)

    few = np.flatnonzero(masks_b.sum(axis=1) < MIN_MASK_JOINTS)
    if few.size:
        raise ValueError(f"{few.size} quer(y/ies) have fewer than {MIN_MASK_JOINTS} masked joints: {_first(few)}")
    bad = np.flatnonzero((~np.isfinite(raw).all(axis=2) & masks_b).any(axis=1))
    if bad.size:
        raise ValueError(f"{bad.size} quer(y/ies) have NaN or inf in a masked joint: {_first(bad)}")

    normalised, spread = normalise_masked(raw, masks_b)
    # Relative test: a query in pixels far from the origin still has a spread of many pixels.
    magnitude = np.abs(np.where(masks_b[..., None], raw, 0)).max(axis=(1, 2))
    flat = np.flatnonzero(spread <= 1e-9 * np.maximum(magnitude, 1.0))
    if flat.size:
        raise ValueError(f"{flat.size} quer(y/ies) have all masked joints at one point: {_first(flat)}")

    packed = np.packbits(masks_b, axis=1)
    _, first, group = np.unique(packed, axis=0, return_index=True, return_inverse=True)
    return QueryBatch(
        qbar=np.ascontiguousarray(normalised.reshape(raw.shape[0], 2 * num_joints), dtype=np.float32),
        masks=masks_b,
        group=group.reshape(-1).astype(np.int64),
        unique_masks=masks_b[first],
    )


def mask_group_ranges(group_sorted: npt.NDArray[np.int64]) -> list[tuple[int, int, int]]:
    """Runs of equal values in a sorted group array, as (start, stop, group) triples."""
    if group_sorted.size == 0:
        return []
    cuts = np.flatnonzero(np.diff(group_sorted)) + 1
    starts = np.concatenate(([0], cuts))
    stops = np.concatenate((cuts, [group_sorted.size]))
    return [(int(a), int(b), int(group_sorted[a])) for a, b in zip(starts, stops)]
