"""The "numpy" engine: the reference every other engine is tested against. Slow on purpose.

It does literally what paper eq. 9 says, in float64, from the raw bank poses: for each mask, for
each block of bank rows, normalise the masked joints of every row (centre on their mean, scale to
unit norm), take the L2 distance to the normalised query, keep the k smallest. No norm-table trick,
no cosine, no float32. Memory is bounded by the block sizes: query_block x bank_block x 2J floats.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .config import SearchConfig
from .inputs import QueryBatch, normalise_masked
from .prepared import PreparedBank

DEFAULT_BANK_BLOCK_ROWS = 2048
DEFAULT_QUERY_BLOCK_ROWS = 64


def _normalised_block(
    poses_2d: npt.NDArray[np.float32], mask: npt.NDArray[np.bool_], eps: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """n_S of bank rows (Nb, J, 2) as (Nb, |S|*2) float64, and which rows are degenerate for S."""
    x = poses_2d.astype(np.float64)
    normalised, spread = normalise_masked(x, np.broadcast_to(mask, x.shape[:2]))
    full_spread = np.sqrt(((x - x.mean(axis=1, keepdims=True)) ** 2).sum(axis=(1, 2)))
    degenerate = spread <= eps * full_spread  # also true when every joint of the pose coincides
    return normalised[:, mask].reshape(len(x), -1), degenerate


def search_reference(
    bank: PreparedBank, queries: QueryBatch, k: int, config: SearchConfig
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Exact masked kNN by literal normalisation. Returns distances (Q, k) float32 and ids (Q, k) int64.

    Degenerate rows get distance inf and never appear (a slot with no valid row: inf, id -1).
    """
    bank_block = config.bank_block_rows or DEFAULT_BANK_BLOCK_ROWS
    query_block = config.query_block_rows or DEFAULT_QUERY_BLOCK_ROWS
    n = bank.num_rows
    num_q = queries.num_queries
    j = queries.num_joints
    best_d = np.full((num_q, k), np.inf)
    best_i = np.full((num_q, k), -1, dtype=np.int64)
    for g, mask in enumerate(queries.unique_masks):
        members = np.flatnonzero(queries.group == g)
        q_all = queries.qbar.reshape(num_q, j, 2)[members][:, mask].reshape(len(members), -1).astype(np.float64)
        for i0 in range(0, n, bank_block):
            xb, degenerate = _normalised_block(bank.poses_2d[i0 : i0 + bank_block], mask, bank.degenerate_eps)
            block_ids = np.arange(i0, i0 + len(xb), dtype=np.int64)
            for q0 in range(0, len(members), query_block):
                rows = members[q0 : q0 + query_block]
                xq = q_all[q0 : q0 + query_block]
                dist = np.sqrt(((xq[:, None, :] - xb[None, :, :]) ** 2).sum(axis=2))
                dist[:, degenerate] = np.inf
                # Obviously correct merge: sort the running best together with the whole block.
                cand_d = np.concatenate((best_d[rows], dist), axis=1)
                cand_i = np.concatenate((best_i[rows], np.broadcast_to(block_ids, dist.shape)), axis=1)
                order = np.argsort(cand_d, axis=1, kind="stable")[:, :k]
                best_d[rows] = np.take_along_axis(cand_d, order, axis=1)
                best_i[rows] = np.take_along_axis(cand_i, order, axis=1)
    best_i[~np.isfinite(best_d)] = -1
    return best_d.astype(np.float32), best_i
