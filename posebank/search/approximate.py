"""The "faiss-ivf" engine: approximate masked kNN with one inverted-file index for every mask.

Index (built once per bank, reusable across calls): faiss k-means of the bank poses normalised over
all joints (PreparedBank.coords, 2J dims) gives `nlist` cells; each bank row goes to the cell of its
nearest centroid, and the bank tables are stored sorted by cell. Nothing depends on a mask.

Search, for a query q with mask S:
1. cells: the `nprobe` centroids nearest to q under the *masked* distance, found by an exact masked
   search against the nlist centroids. A bank row close to q on S lies in a cell whose centroid is
   close to it on all joints, hence close to q on S;
2. scan: within each probed cell, the exact masked cosine of every row (the same table trick and
   GEMM as the blas engine), best k per (query, cell);
3. merge the nprobe x k candidates per query and recompute their distances exactly.
Queries go through in blocks (query_block_rows, default 16384) so memory stays bounded.
The answer is exact whenever the true neighbours lie in the probed cells; misses come from step 1
only. Measure recall against an exact engine (bench/bench_search.py) when changing nlist/nprobe.

faiss does the k-means and the nearest-centroid assignment; the scan is numpy, because of this:
why not faiss's own IndexIVFFlat scan? it ranks by <q̄, n_all(b)> = cos_S * ||b_S - mean_S(b)|| /
||b - mean(b)||, exact for full-body masks but a poor proxy for partial ones (measured recall@1 of
0.14-0.57 with shortlists of 32-512 on synthetic data), so the scan here applies the mask's normaliser.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from .blas_engine import blas_topk, cpu_threads, single_threaded_blas
from .config import SearchConfig
from .inputs import QueryBatch, prepare_queries
from .prepared import PreparedBank, candidates_per_query, finalize, masked_inverse_spread, prepare_bank
from .topk import top_k

LOG = logging.getLogger(__name__)

_MIN_POINTS_PER_CENTROID = 39  # faiss k-means warns below this; fewer cells for small banks
# Queries per pass: bounds the (Q, nprobe, k) candidate arrays; ~300 queries per cell at nlist 512.
DEFAULT_QUERY_BLOCK_ROWS = 16384


@dataclass(frozen=True, eq=False)
class IvfMaskedIndex:
    """Bank tables sorted by k-means cell, usable for any mask. Build with `build_ivf_index`.

    Attributes:
        bank: the prepared bank, in its original row order.
        centroids: the nlist cell centroids as a prepared bank of poses (searched with masks).
        coords: (N, 2J) float32 bank.coords sorted by cell; sqnorm: (N, J) likewise.
        row_ids: (N,) int64 original bank row of each sorted row.
        cell_start: (nlist + 1,) int64, cell c holds sorted rows cell_start[c] .. cell_start[c+1]-1.
        config: the config it was built with (ivf_nprobe, threads are read at search time).
        build_seconds: wall time of the build (k-means + assignment + sort).
    """

    bank: PreparedBank
    centroids: PreparedBank
    coords: npt.NDArray[np.float32]
    sqnorm: npt.NDArray[np.float32]
    row_ids: npt.NDArray[np.int64]
    cell_start: npt.NDArray[np.int64]
    config: SearchConfig
    build_seconds: float

    @property
    def nlist(self) -> int:
        return self.centroids.num_rows

    def search(
        self,
        queries_2d: npt.ArrayLike,
        masks: npt.ArrayLike,
        k: int = 1,
        *,
        nprobe: int | None = None,
        nprobe_full: int | None = None,
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """Approximate masked kNN: same inputs and outputs as posebank.search.masked_knn.

        nprobe, nprobe_full: cells scanned per partial-mask / full-body query (defaults: config
        ivf_nprobe, ivf_nprobe_full); more is slower and closer to exact.
        """
        if not 1 <= k <= self.bank.num_rows:
            raise ValueError(f"k must be in [1, N={self.bank.num_rows}], got {k}")
        queries = prepare_queries(queries_2d, masks, self.bank.num_joints)
        return self.search_batch(queries, k, nprobe=nprobe, nprobe_full=nprobe_full)

    def search_batch(
        self, queries: QueryBatch, k: int, *, nprobe: int | None = None, nprobe_full: int | None = None
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """search() on an already validated QueryBatch."""
        k_final, k = k, candidates_per_query(self.bank, k, self.config.rerank_margin)
        nprobe = min(nprobe or self.config.ivf_nprobe, self.nlist)
        nprobe_full = min(nprobe_full or self.config.ivf_nprobe_full, self.nlist)
        block = self.config.query_block_rows or DEFAULT_QUERY_BLOCK_ROWS
        ids = np.concatenate(
            [
                self._candidates(queries.subset(slice(q0, q0 + block)), k_final, k, nprobe, nprobe_full)
                for q0 in range(0, queries.num_queries, block)
            ]
            or [np.zeros((0, k), dtype=np.int64)]
        )
        return finalize(self.bank, queries.qbar, queries.masks, ids, k_final)

    def _candidates(
        self, queries: QueryBatch, k_cell: int, k: int, nprobe: int, nprobe_full: int
    ) -> npt.NDArray[np.int64]:
        """Best k rows (Q, k) int64 of each query within its probed cells, unsorted (-1: none).

        Each cell contributes its best k_cell rows per query: k_cell = k (the caller's) suffices for
        the near-tie margin, which the nprobe x k_cell candidates of all cells already cover.
        """
        widest = max(nprobe, nprobe_full)
        # Step 1: cells by masked distance to the centroids (exact search over nlist rows).
        cosines, cells = blas_topk(self.centroids, queries, widest, replace(self.config, bank_block_rows=None))
        cells = np.take_along_axis(cells, np.argsort(-cosines, axis=1, kind="stable"), axis=1)  # nearest first
        probes = np.where(queries.masks.all(axis=1), nprobe_full, nprobe)
        cells[np.arange(widest) >= probes[:, None]] = -1  # not scanned
        # Step 2: every (query, probe) pair gets its own k slots, so cells can be scanned in any
        # order (and in parallel) with no merging between them.
        cand_scores = np.full((queries.num_queries, widest, k_cell), -np.inf, dtype=np.float32)
        cand_ids = np.full((queries.num_queries, widest, k_cell), -1, dtype=np.int64)
        flat = cells.reshape(-1)
        order = np.argsort(flat, kind="stable")
        bounds = np.searchsorted(flat[order], np.arange(self.nlist + 1))
        work = [(c, order[bounds[c] : bounds[c + 1]]) for c in range(self.nlist) if bounds[c + 1] > bounds[c]]

        def scan(chunk: list[tuple[int, npt.NDArray[np.intp]]]) -> None:
            for cell, pairs in chunk:
                self._scan_cell(queries, cell, pairs // widest, pairs % widest, k_cell, cand_scores, cand_ids)

        threads = min(cpu_threads(self.config.threads), len(work)) or 1
        with single_threaded_blas():
            if threads == 1:
                scan(work)
            else:
                with ThreadPoolExecutor(max_workers=threads) as pool:
                    list(pool.map(scan, [work[i::threads] for i in range(threads)]))
        # Step 3: best k of the widest x k_cell candidates of each query.
        flat_scores = cand_scores.reshape(queries.num_queries, -1)
        keep, kept_scores = top_k(flat_scores, k)
        ids = np.take_along_axis(cand_ids.reshape(queries.num_queries, -1), keep, axis=1)
        return np.where(np.isneginf(kept_scores), -1, ids)

    def _scan_cell(
        self,
        queries: QueryBatch,
        cell: int,
        query_rows: npt.NDArray[np.intp],
        probe_slots: npt.NDArray[np.intp],
        k: int,
        cand_scores: npt.NDArray[np.float32],
        cand_ids: npt.NDArray[np.int64],
    ) -> None:
        """Exact masked top-k of the queries `query_rows` within one cell, written to their probe slots."""
        lo, hi = self.cell_start[cell], self.cell_start[cell + 1]
        if hi == lo:
            return
        coords, sqnorm = self.coords[lo:hi], self.sqnorm[lo:hi]
        groups, local = np.unique(queries.group[query_rows], return_inverse=True)
        inv_spread, degenerate = masked_inverse_spread(
            coords, sqnorm, queries.unique_masks[groups], self.bank.degenerate_eps
        )
        # A few large numpy calls per cell, not a few per mask: less interpreter time, during which the
        # other scan thread would be waiting for the GIL.
        scores = queries.qbar[query_rows] @ coords.T
        scores *= inv_spread[local]
        if degenerate.any():
            scores[degenerate[local]] = -np.inf
        cols, found = top_k(scores, k)
        width = found.shape[1]  # < k when the cell has fewer than k rows
        cand_scores[query_rows, probe_slots, :width] = found
        cand_ids[query_rows, probe_slots, :width] = self.row_ids[lo + cols]


def default_nlist(num_rows: int) -> int:
    """The power of 2 nearest sqrt(N) / 2: cells of ~2 sqrt(N) rows, few enough that the per-cell
    Python work stays small next to the GEMMs (measured on 1e5 and 1e6 banks, BENCHMARKS.md)."""
    return int(2 ** round(np.log2(max(np.sqrt(num_rows) / 2, 1.0))))


def build_ivf_index(bank: PreparedBank | npt.ArrayLike, config: SearchConfig | None = None) -> IvfMaskedIndex:
    """Train k-means cells on a sample of the bank, assign every row to a cell, sort the tables by cell.

    Args:
        bank: a PreparedBank, or (N, J, 2) / (N, 2J) bank poses.
        config: ivf_nlist, ivf_train_rows, ivf_niter, seed are read here.

    Cost: k-means on ivf_train_rows x 2J (ivf_niter iterations), one nearest-centroid search for the
    N rows, and a copy of the tables (N x 3J float32) in cell order (BENCHMARKS.md gives times).
    """
    import faiss  # only the approximate engine needs it

    config = config or SearchConfig(engine="faiss-ivf")
    if not isinstance(bank, PreparedBank):
        bank = prepare_bank(bank, degenerate_eps=config.degenerate_eps)
    t0 = time.perf_counter()
    n, d = bank.coords.shape
    nlist = max(1, min(config.ivf_nlist or default_nlist(n), n // _MIN_POINTS_PER_CENTROID))
    rng = np.random.default_rng(config.seed)
    valid = np.flatnonzero(bank.sqnorm.sum(axis=1) > 0.5)  # skip all-zero (fully degenerate) rows
    if valid.size < nlist:
        valid = np.arange(n)
    sample = bank.coords[np.sort(rng.choice(valid, size=min(config.ivf_train_rows, valid.size), replace=False))]
    kmeans = faiss.Kmeans(d, nlist, niter=config.ivf_niter, seed=config.seed, verbose=False)
    kmeans.train(sample)
    # L2 on unit-norm poses (the k-means objective) decides the cell of each row.
    _, assign = kmeans.index.search(bank.coords, 1)
    assign = assign.reshape(-1)
    row_ids = np.argsort(assign, kind="stable").astype(np.int64)
    cell_start = np.searchsorted(assign[row_ids], np.arange(nlist + 1)).astype(np.int64)
    centroids = prepare_bank(kmeans.centroids.reshape(nlist, d // 2, 2), degenerate_eps=bank.degenerate_eps)
    seconds = time.perf_counter() - t0
    LOG.info("faiss-ivf: built %d cells over %d rows in %.1f s", nlist, n, seconds)
    return IvfMaskedIndex(
        bank=bank,
        centroids=centroids,
        coords=bank.coords[row_ids],
        sqnorm=bank.sqnorm[row_ids],
        row_ids=row_ids,
        cell_start=cell_start,
        config=config,
        build_seconds=seconds,
    )


def search_ivf(
    bank: PreparedBank, queries: QueryBatch, k: int, config: SearchConfig
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """masked_knn(engine="faiss-ivf"): builds the index, then searches. When searching one bank more
    than once, build once (build_ivf_index) and call IvfMaskedIndex.search."""
    return build_ivf_index(bank, config).search_batch(queries, k)
