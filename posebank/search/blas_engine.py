"""The "blas" engine: exact masked kNN on the CPU as cache-sized GEMM tiles from numpy's BLAS.

For each tile (a block of queries sorted by mask) x (a block of bank rows):
1. one small GEMM gives 1/||b_S - mean_S(b)|| of every row for every mask in the tile (prepared.py);
2. cosines <q̄, b> / ||b_S - mean_S(b)||: the full-body mask needs no scaling (prepared rows have
   unit norm); a mask group with at least 2J queries in the tile scales the bank block first (2J
   products per row) and does its own GEMM; the other queries of the tile share one GEMM and their
   scores are scaled afterwards (one product per query and row);
3. degenerate rows get -inf, and a running top-k (topk.py) keeps the best k + rerank_margin rows.
Those are then re-ranked by their exact float64 distances (prepared.finalize).

Threads: each worker thread takes whole query blocks, and BLAS is held to one thread per call while
the engine runs. GEMMs this small (K = 2J = 26) gain little from BLAS threads, and OpenBLAS threads
that spin-wait for each other were up to 90x slower when another process used the cores.

Tile sizes: a 256 x 8192 float32 score tile is 8 MB, so it stays in cache between the GEMM that
writes it and the reductions that read it.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import numpy.typing as npt

from .config import SearchConfig
from .inputs import QueryBatch, mask_group_ranges
from .prepared import PreparedBank, candidates_per_query, finalize, masked_inverse_spread
from .topk import RunningTopK

LOG = logging.getLogger(__name__)

DEFAULT_BANK_BLOCK_ROWS = 8192
DEFAULT_QUERY_BLOCK_ROWS = 256


def cpu_threads(requested: int | None) -> int:
    """Worker threads: `requested`, else the CPUs this process may run on."""
    if requested:
        return requested
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Hold numpy's BLAS to one thread inside the block (threadpoolctl; a no-op if it is missing)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        LOG.warning("threadpoolctl is not installed: BLAS threads are not limited, CPU search may be slow")
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _score_tile(
    qbar: npt.NDArray[np.float32],
    groups: list[tuple[int, int, int]],
    coords: npt.NDArray[np.float32],
    inv_spread: npt.NDArray[np.float32],
    degenerate: npt.NDArray[np.bool_],
    full: npt.NDArray[np.bool_],
    out: npt.NDArray[np.float32],
) -> None:
    """Write the masked cosines of queries (Qb, 2J) against bank rows (Nb, 2J) into out (Qb, Nb).

    groups: (start, stop, m) query ranges sharing mask m, the row of inv_spread/degenerate (M, Nb);
    full: (M,) the mask is the whole body (its normaliser is 1: prepared rows have unit norm).
    This is the step a fused GPU/CPU kernel would replace: GEMM, per-row scaling, -inf masking.
    """
    two_j = coords.shape[1]
    small: list[tuple[int, int, int]] = []

    def flush_small() -> None:
        # Consecutive small groups: one GEMM, then each query row scaled by its mask's normaliser.
        if not small:
            return
        a0, b0 = small[0][0], small[-1][1]
        np.matmul(qbar[a0:b0], coords.T, out=out[a0:b0])
        if len(small) == 1:
            out[a0:b0] *= inv_spread[small[0][2]]
        else:
            rows = np.repeat([m for _, _, m in small], [b - a for a, b, _ in small])
            out[a0:b0] *= inv_spread[rows]
        small.clear()

    for a, b, m in groups:
        if full[m]:
            flush_small()
            np.matmul(qbar[a:b], coords.T, out=out[a:b])
        elif b - a >= two_j:
            flush_small()
            np.matmul(qbar[a:b], (coords * inv_spread[m][:, None]).T, out=out[a:b])
        else:
            small.append((a, b, m))
    flush_small()

    for m in np.flatnonzero(degenerate.any(axis=1)):
        bad = np.flatnonzero(degenerate[m])
        for a, b, gm in groups:
            if gm == m:
                out[a:b, bad] = -np.inf


def _search_query_block(
    bank: PreparedBank,
    qbar: npt.NDArray[np.float32],
    group: npt.NDArray[np.int64],
    unique_masks: npt.NDArray[np.bool_],
    k: int,
    bank_block: int,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Top-k cosines (Qb, k) float32 and bank rows (Qb, k) int64 for one block of queries sorted by mask."""
    local = mask_group_ranges(group)
    block_masks = unique_masks[[m for _, _, m in local]]
    full = block_masks.all(axis=1)
    groups = [(a, b, i) for i, (a, b, _) in enumerate(local)]  # i: row in this block's mask table
    top = RunningTopK(len(qbar), k)
    n = bank.num_rows
    buffer = np.empty(len(qbar) * min(bank_block, n), dtype=np.float32)
    for i0 in range(0, n, bank_block):
        coords = bank.coords[i0 : i0 + bank_block]
        sqnorm = bank.sqnorm[i0 : i0 + bank_block]
        inv_spread, degenerate = masked_inverse_spread(coords, sqnorm, block_masks, bank.degenerate_eps)
        scores = buffer[: len(qbar) * len(coords)].reshape(len(qbar), len(coords))  # contiguous view
        _score_tile(qbar, groups, coords, inv_spread, degenerate, full, scores)
        top.add(scores, i0)
    return top.scores, top.filled_ids


def blas_topk(
    bank: PreparedBank, queries: QueryBatch, k: int, config: SearchConfig
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """The k best masked cosines (Q, k) float32 and bank rows (Q, k) int64 of each query, unsorted.

    Empty slots: cosine -inf, id -1. No exact distances (search_blas adds them).
    """
    bank_block = config.bank_block_rows or DEFAULT_BANK_BLOCK_ROWS
    query_block = config.query_block_rows or DEFAULT_QUERY_BLOCK_ROWS
    order = np.argsort(queries.group, kind="stable")  # queries of one mask become contiguous
    qbar_sorted = queries.qbar[order]
    group_sorted = queries.group[order]
    starts = range(0, queries.num_queries, query_block)

    def run(q0: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        sl = slice(q0, q0 + query_block)
        return _search_query_block(bank, qbar_sorted[sl], group_sorted[sl], queries.unique_masks, k, bank_block)

    threads = min(cpu_threads(config.threads), len(starts))
    with single_threaded_blas():
        if threads <= 1:
            blocks = [run(q0) for q0 in starts]
        else:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                blocks = list(pool.map(run, starts))
    scores = np.empty((queries.num_queries, k), dtype=np.float32)
    ids = np.empty((queries.num_queries, k), dtype=np.int64)
    scores[order] = np.concatenate([s for s, _ in blocks], axis=0)
    ids[order] = np.concatenate([i for _, i in blocks], axis=0)
    return scores, ids


def search_blas(
    bank: PreparedBank, queries: QueryBatch, k: int, config: SearchConfig
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Exact masked kNN. Returns distances (Q, k) float32 (sorted, inf = none) and ids (Q, k) int64 (-1 = none)."""
    _, ids = blas_topk(bank, queries, candidates_per_query(bank, k, config.rerank_margin), config)
    return finalize(bank, queries.qbar, queries.masks, ids, k)
