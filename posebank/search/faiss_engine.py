"""The "faiss" engine: exact masked kNN with faiss's exhaustive inner-product search.

faiss scores inner products <x_q, x_b> only, and our bank-side normaliser 1/||b_S - mean_S(b)||
depends on the row and the mask, so it cannot be folded into the query. What faiss can search is a
rescaled copy of the bank, one per mask. This engine keeps that copy small and cheap:
- the bank streams in blocks; per block, every mask's normaliser comes from the tables with one
  small GEMM (prepared.masked_inverse_spread), never from a pass over a normalised copy;
- per mask group, only the block (Nb x 2J) is rescaled, and faiss.knn (BLAS GEMM + heap, OpenMP)
  searches it; the block's ids are offset by its start and merged into the running top-k;
- degenerate rows get a 2J+1-th coordinate of -4 (the query's is 1), so their inner product is
  below -3 while every real cosine is >= -1: they can only fill slots that nothing valid can.
With faiss GPU support (faiss.get_num_gpus() > 0) the per-block search is faiss.knn_gpu.

Compared with the per-mask baseline (normalise the whole bank per mask, then IndexFlatIP), this saves
the normalisation passes (7-8x faster at 1e5 rows, 2000 queries) but still pays one rescaled copy per
(mask, block). It stays well behind the blas engine on the CPU mostly because faiss.knn itself does:
on the 2-core test machine even the unmasked flat search (no copies) ran at ~0.3-0.6 G query-row
pairs/s against ~0.9-1.4 for the blas engine's masked search (BENCHMARKS.md).
"""

from __future__ import annotations

import logging

import faiss
import numpy as np
import numpy.typing as npt

from .config import SearchConfig
from .inputs import QueryBatch, mask_group_ranges
from .prepared import PreparedBank, candidates_per_query, finalize, masked_inverse_spread
from .topk import merge_topk

LOG = logging.getLogger(__name__)

DEFAULT_BANK_BLOCK_ROWS = 65536
DEFAULT_QUERY_BLOCK_ROWS = 4096
_DEGENERATE_PENALTY = -4.0  # below any cosine (>= -1), so a degenerate row never beats a real one
_NO_MATCH_BELOW = -2.0  # scores under this are penalised rows: reported as no match


class _Knn:
    """faiss.knn on the CPU, or faiss.knn_gpu with one StandardGpuResources when a GPU is present."""

    def __init__(self) -> None:
        self.gpu_resources = None
        if faiss.get_num_gpus() > 0:
            self.gpu_resources = faiss.StandardGpuResources()
            LOG.info("faiss engine: using %d GPU(s)", faiss.get_num_gpus())

    def __call__(self, xq: np.ndarray, xb: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self.gpu_resources is not None:
            return faiss.knn_gpu(self.gpu_resources, xq, xb, k, metric=faiss.METRIC_INNER_PRODUCT)
        return faiss.knn(xq, xb, k, metric=faiss.METRIC_INNER_PRODUCT)


def search_faiss(
    bank: PreparedBank, queries: QueryBatch, k: int, config: SearchConfig
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Exact masked kNN. Returns distances (Q, k) float32 (sorted, inf = none) and ids (Q, k) int64 (-1 = none)."""
    k_final, k = k, candidates_per_query(bank, k, config.rerank_margin)
    bank_block = config.bank_block_rows or DEFAULT_BANK_BLOCK_ROWS
    query_block = config.query_block_rows or DEFAULT_QUERY_BLOCK_ROWS
    knn = _Knn()
    n, two_j = bank.coords.shape
    order = np.argsort(queries.group, kind="stable")  # queries of one mask become contiguous
    group_sorted = queries.group[order]
    # Queries get a constant 1 in the extra coordinate that carries the degenerate penalty.
    xq_sorted = np.ones((queries.num_queries, two_j + 1), dtype=np.float32)
    xq_sorted[:, :two_j] = queries.qbar[order]
    best = np.full((queries.num_queries, k), -np.inf, dtype=np.float32)
    best_ids = np.full((queries.num_queries, k), -1, dtype=np.int64)
    xb = np.empty((min(bank_block, n), two_j + 1), dtype=np.float32)

    for q0 in range(0, queries.num_queries, query_block):
        local = mask_group_ranges(group_sorted[q0 : q0 + query_block])
        block_masks = queries.unique_masks[[m for _, _, m in local]]
        for i0 in range(0, n, bank_block):
            coords = bank.coords[i0 : i0 + bank_block]
            inv_spread, degenerate = masked_inverse_spread(
                coords, bank.sqnorm[i0 : i0 + bank_block], block_masks, bank.degenerate_eps
            )
            nb = len(coords)
            for g, (a, b, _) in enumerate(local):
                np.multiply(coords, inv_spread[g][:, None], out=xb[:nb, :two_j])
                xb[:nb, two_j] = np.where(degenerate[g], _DEGENERATE_PENALTY, 0.0)
                rows = slice(q0 + a, q0 + b)
                scores, ids = knn(xq_sorted[rows], xb[:nb], min(k, nb))
                ids += i0  # block offset: ids are rows of the whole bank
                best[rows], best_ids[rows] = merge_topk(best[rows], best_ids[rows], scores, ids, k)

    ids = np.empty_like(best_ids)
    ids[order] = np.where(best < _NO_MATCH_BELOW, -1, best_ids)
    return finalize(bank, queries.qbar, queries.masks, ids, k_final)
