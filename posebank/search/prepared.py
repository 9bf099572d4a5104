"""The bank side of masked matching: one mask-independent table, and the per-mask normaliser from it.

Why this works (docs/design.md "Masked, normalised matching"): let q̄ = n_S(q), zero outside S and
zero-mean over S. Then for any bank pose b

    <q̄, n_S(b)> = <q̄, b> / sqrt( sum_{j in S} ||b_j||^2 - ||sum_{j in S} b_j||^2 / |S| )

because <q̄, mean_S(b)> = 0. Both terms under the root are linear in the mask vector, so from a
(N, J) table of squared joint norms and the (N, 2J) coordinates, the normaliser of every bank row for
a mask costs O(N J) (a GEMV, or a GEMM for several masks) and the score is one GEMM: no normalised
copy of the bank per mask. n_S is invariant to translating and scaling b, so the table is built from
each pose centred on its own mean joint and scaled to unit norm: the values are O(1), which keeps
the float32 cancellation in the difference above near 1e-7, and the degenerate test is absolute.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .inputs import as_poses_2d, check_finite_bank, normalise_masked

_PREPARE_CHUNK_ROWS = 65536  # bounds the float64 temporaries of prepare_bank to a few tens of MB
_FINALIZE_CHUNK_ROWS = 8192  # same for the exact re-ranking of candidates


@dataclass(frozen=True, eq=False)
class PreparedBank:
    """A bank ready for masked search; build it once with `prepare_bank` and reuse it across calls.

    Attributes:
        poses_2d: (N, J, 2) float32, the validated input poses (read by the numpy reference engine).
        coords: (N, 2J) float32, row-major (joint, coord): each pose centred on its mean joint and
            scaled to unit norm over all joints; all zero for a pose whose joints coincide.
        sqnorm: (N, J) float32, squared norm of each joint of `coords`.
        degenerate_eps: a row whose spread over a mask is <= eps x its full spread never matches that mask.
    """

    poses_2d: npt.NDArray[np.float32]
    coords: npt.NDArray[np.float32]
    sqnorm: npt.NDArray[np.float32]
    degenerate_eps: float

    @property
    def num_rows(self) -> int:
        return self.coords.shape[0]

    @property
    def num_joints(self) -> int:
        return self.sqnorm.shape[1]


def prepare_bank(bank_2d: npt.ArrayLike, *, degenerate_eps: float = 1e-3) -> PreparedBank:
    """Validate the bank and build its mask-independent tables (O(N J) time, 3 x the bank's memory).

    Args:
        bank_2d: (N, J, 2) or (N, 2J) 2D poses (the bank's `pose_2d`), any float dtype and units.
        degenerate_eps: see PreparedBank.

    Raises:
        ValueError: wrong shape, an empty bank, or NaN/inf anywhere in the bank.
    """
    poses = as_poses_2d(bank_2d, "bank_2d")
    if poses.shape[0] == 0:
        raise ValueError("bank_2d is empty")
    check_finite_bank(poses)
    n, j, _ = poses.shape
    coords = np.empty((n, 2 * j), dtype=np.float32)
    for i0 in range(0, n, _PREPARE_CHUNK_ROWS):
        x = poses[i0 : i0 + _PREPARE_CHUNK_ROWS].astype(np.float64)
        x -= x.mean(axis=1, keepdims=True)
        spread = np.sqrt((x**2).sum(axis=(1, 2)))
        x /= np.where(spread > 0, spread, 1.0)[:, None, None]
        coords[i0 : i0 + len(x)] = x.reshape(len(x), 2 * j)
    sqnorm = (coords.reshape(n, j, 2).astype(np.float64) ** 2).sum(axis=2).astype(np.float32)
    return PreparedBank(poses_2d=poses, coords=coords, sqnorm=sqnorm, degenerate_eps=float(degenerate_eps))


def mask_weights(masks: npt.NDArray[np.bool_]) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """The two matrices that turn the bank tables into masked sums, for M masks (M, J).

    Returns:
        w_sq: (M, J) float32, the masks as rows: w_sq @ sqnorm.T = sum over S of squared joint norms.
        w_xy: (2M, 2J) float32, w_xy @ coords.T = rows (sum_x over S, sum_y over S) for each mask.
    """
    m, j = masks.shape
    w_sq = masks.astype(np.float32)
    w_xy = np.zeros((m, 2, j, 2), dtype=np.float32)
    w_xy[:, 0, :, 0] = w_sq
    w_xy[:, 1, :, 1] = w_sq
    return w_sq, w_xy.reshape(2 * m, 2 * j)


def masked_inverse_spread(
    coords: npt.NDArray[np.float32],
    sqnorm: npt.NDArray[np.float32],
    masks: npt.NDArray[np.bool_],
    degenerate_eps: float,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """1 / ||b_S - mean_S(b)|| for every row of a bank block and every mask, from the tables.

    Cost: a GEMM of 3J x M per row plus ~8 elementwise passes over (M, Nb); per distinct mask that is
    a few times the cost of one query, which is why queries are grouped by mask.

    Args:
        coords: (Nb, 2J) float32 rows of PreparedBank.coords.
        sqnorm: (Nb, J) float32 the matching rows of PreparedBank.sqnorm.
        masks: (M, J) bool.
        degenerate_eps: rows whose masked spread is <= eps (the full spread is 1) are degenerate.

    Returns:
        inv_spread: (M, Nb) float32, 0 for degenerate rows.
        degenerate: (M, Nb) bool.
    """
    full = masks.all(axis=1)
    if full.any():
        # Full-body masks need no GEMM: a prepared row has unit spread over all joints, or is all zero.
        valid = sqnorm.sum(axis=1) > 0.5
        inv = np.empty((len(masks), len(coords)), dtype=np.float32)
        degenerate = np.empty(inv.shape, dtype=bool)
        inv[full], degenerate[full] = valid, ~valid
        if not full.all():
            inv[~full], degenerate[~full] = masked_inverse_spread(coords, sqnorm, masks[~full], degenerate_eps)
        return inv, degenerate
    w_sq, w_xy = mask_weights(masks)
    sum_sq = w_sq @ sqnorm.T  # (M, Nb)
    sums = (w_xy @ coords.T).reshape(len(masks), 2, -1)  # (M, 2, Nb): sum_x, sum_y over S
    return inverse_spread_from_sums(sum_sq, sums[:, 0], sums[:, 1], masks, degenerate_eps)


def joint_tables(coords: npt.NDArray[np.float32], sqnorm: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """The bank tables transposed, (3J, Nb) float32: rows 0..J-1 the squared joint norms, J..2J-1 the
    x and 2J..3J-1 the y of each joint, one column per bank row.

    In this layout one (M, J) mask matrix times the three (J, Nb) planes gives all the masked sums
    (`tables_inverse_spread`, ~3x faster than masked_inverse_spread's GEMMs for the few masks and few
    thousand rows of an IVF cell), and rows J..3J-1 are the coordinates for the score GEMM, with the
    queries in `split_xy` order. A column slice of a larger table is a valid block.
    """
    j = sqnorm.shape[1]
    xy = coords.reshape(len(coords), j, 2)
    return np.ascontiguousarray(np.concatenate((sqnorm.T, xy[:, :, 0].T, xy[:, :, 1].T), axis=0), dtype=np.float32)


def split_xy(qbar: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """(Q, 2J) rows (x0, y0, x1, y1, ...) reordered to (x0, x1, ..., y0, y1, ...), the order of joint_tables."""
    q, two_j = qbar.shape
    return np.ascontiguousarray(qbar.reshape(q, two_j // 2, 2).transpose(0, 2, 1).reshape(q, two_j))


def tables_inverse_spread(
    tables: npt.NDArray[np.float32], masks: npt.NDArray[np.bool_], degenerate_eps: float
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """masked_inverse_spread from a `joint_tables` block (3J, Nb): same outputs, (M, Nb) each."""
    j = masks.shape[1]
    sums = np.matmul(masks.astype(np.float32), tables.reshape(3, j, tables.shape[1]))  # (3, M, Nb)
    return inverse_spread_from_sums(sums[0], sums[1], sums[2], masks, degenerate_eps)


def inverse_spread_from_sums(
    sum_sq: npt.NDArray[np.float32],
    sum_x: npt.NDArray[np.float32],
    sum_y: npt.NDArray[np.float32],
    masks: npt.NDArray[np.bool_],
    degenerate_eps: float,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """(inv_spread, degenerate), both (M, Nb), from the masked sums over S of ||b_j||^2, x_j, y_j (M, Nb).

    ||b_S - mean_S(b)||^2 = sum ||b_j||^2 - ||sum b_j||^2 / |S|. Overwrites its inputs.
    """
    np.square(sum_x, out=sum_x)
    np.square(sum_y, out=sum_y)
    sum_x += sum_y
    sum_x *= (1.0 / masks.sum(axis=1)).astype(np.float32)[:, None]
    spread_sq = np.subtract(sum_sq, sum_x, out=sum_sq)
    eps_sq = np.float32(degenerate_eps**2)
    degenerate = spread_sq <= eps_sq
    np.maximum(spread_sq, eps_sq, out=spread_sq)
    inv = np.sqrt(spread_sq, out=spread_sq)
    np.reciprocal(inv, out=inv)
    if degenerate.any():
        inv[degenerate] = 0.0
    return inv, degenerate


def exact_distances(
    bank: PreparedBank,
    qbar: npt.NDArray[np.float32],
    masks: npt.NDArray[np.bool_],
    ids: npt.NDArray[np.int64],
) -> npt.NDArray[np.float64]:
    """The literal distance ||n_S(q) - n_S(b)|| for given (query, bank row) pairs, in float64.

    Engines rank candidates with float32 cosines; this recomputes the distances of the chosen rows
    (O(Q k J)), so that small distances are accurate (sqrt(2 - 2 cos) loses half the digits near 0).

    Args:
        bank: the prepared bank.
        qbar: (Q, 2J) float32 normalised queries (QueryBatch.qbar).
        masks: (Q, J) bool.
        ids: (Q, k) int64 bank rows; -1 for "no candidate".

    Returns:
        (Q, k) float64 distances in [0, 2]; inf where ids == -1 or the row is degenerate for the mask.
    """
    q, k = ids.shape
    j = bank.num_joints
    rows = bank.coords[np.where(ids >= 0, ids, 0)].reshape(q, k, j, 2)
    mask_qk = np.broadcast_to(masks[:, None, :], (q, k, j))
    normalised, spread = normalise_masked(rows, mask_qk)
    diff = normalised - qbar.reshape(q, 1, j, 2).astype(np.float64)
    dist = np.sqrt((diff**2).sum(axis=(2, 3)))
    # The full spread of a prepared row is 1 (or 0), so the degenerate test is absolute here.
    return np.where((ids >= 0) & (spread > bank.degenerate_eps), dist, np.inf)


def sort_results(
    distances: npt.NDArray[np.float64], ids: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Sort each row by increasing distance; inf distances get id -1. Returns (float32, int64) arrays."""
    order = np.argsort(distances, axis=1, kind="stable")
    d = np.take_along_axis(distances, order, axis=1)
    i = np.take_along_axis(ids, order, axis=1)
    i = np.where(np.isfinite(d), i, -1)
    return d.astype(np.float32), i.astype(np.int64)


def candidates_per_query(bank: PreparedBank, k: int, margin: int) -> int:
    """How many float32 candidates an exact engine keeps per query: k + margin, at most N."""
    return min(k + margin, bank.num_rows)


def finalize(
    bank: PreparedBank,
    qbar: npt.NDArray[np.float32],
    masks: npt.NDArray[np.bool_],
    candidates: npt.NDArray[np.int64],
    k: int,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Exact float64 distances of the candidates (Q, k') (-1: none), sorted, the best k kept.

    Engines rank by float32 cosines, whose error grows like 1e-7 (|b_S| / ||b_S - mean_S(b)||)^2 and
    can swap neighbours closer than ~1e-3 in distance (measured: a query equal to a bank row came
    second to a row at 1.4e-3). Keeping a few more candidates than k and re-ranking them exactly
    (SearchConfig.rerank_margin) removes those swaps.
    """
    distances = np.full(candidates.shape, np.inf)
    # Only real candidates (a query searched for fewer than k' rows pads with -1), as (query, slot) pairs.
    query, slot = np.nonzero(candidates >= 0)
    pairs = _FINALIZE_CHUNK_ROWS * 16
    for p0 in range(0, len(query), pairs):  # bounds the (pairs, J, 2) float64 temporaries
        q, s = query[p0 : p0 + pairs], slot[p0 : p0 + pairs]
        distances[q, s] = exact_distances(bank, qbar[q], masks[q], candidates[q, s, None])[:, 0]
    distances, ids = sort_results(distances, candidates)
    return distances[:, :k], ids[:, :k]
