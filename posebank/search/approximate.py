"""The "faiss-ivf" engine: approximate masked kNN with one inverted-file index for every mask.

Index (built once per bank, reusable across calls): faiss k-means of the bank poses normalised over
all joints (PreparedBank.coords, 2J dims) gives `nlist` cells; each bank row goes to the cell of its
nearest centroid, and the bank tables are stored sorted by cell. Nothing depends on a mask.

Search, for a query q with mask S:
1. cells: the `nprobe` centroids nearest to q under the *masked* distance, found by an exact masked
   search against the nlist centroids. A bank row close to q on S lies in a cell whose centroid is
   close to it on all joints, hence close to q on S;
2. scan: within each probed cell, the exact masked cosine of every row (the same table trick and
   GEMM as the blas engine). Full-body queries need no normaliser (prepared rows have unit norm);
   partial ones share one per (cell, mask), from the cell's transposed tables (prepared.joint_tables:
   one small GEMM for all the masks of the cell). The nearest cell gives each query its best k rows;
   in the other cells only rows above the k-th of those can count, and a comparison finds them;
3. the best k of those per query, their distances recomputed exactly.
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
from .prepared import (
    PreparedBank,
    candidates_per_query,
    finalize,
    joint_tables,
    prepare_bank,
    split_xy,
    tables_inverse_spread,
)
from .topk import top_k

LOG = logging.getLogger(__name__)

_MIN_POINTS_PER_CENTROID = 39  # faiss k-means warns below this; fewer cells for small banks
# Queries per pass: bounds the (Q, nprobe, k) candidate arrays; ~300 queries per cell at nlist 512.
DEFAULT_QUERY_BLOCK_ROWS = 16384
_BUILD_SLICE_ROWS = 1 << 18  # bank rows sorted into the index tables at a time
# A (query, cell) keeps every row above the query's bar unless there are more than this x k: the few
# such pairs (1 in 1,000 on the benchmark bank) are cut to their best k, the others sorted once at the end.
_CROWDED = 8


@dataclass(frozen=True, eq=False)
class IvfMaskedIndex:
    """Bank tables sorted by k-means cell, usable for any mask. Build with `build_ivf_index`.

    Attributes:
        bank: the prepared bank, in its original row order.
        centroids: the nlist cell centroids as a prepared bank of poses (searched with masks).
        tables: (3J, N) float32 prepared.joint_tables of the bank, columns sorted by cell.
        invalid: (N,) bool, sorted rows whose joints all coincide (never matched).
        row_ids: (N,) int64 original bank row of each sorted row.
        cell_start: (nlist + 1,) int64, cell c holds sorted rows cell_start[c] .. cell_start[c+1]-1.
        config: the config it was built with (ivf_nprobe, threads are read at search time).
        build_seconds: wall time of the build (k-means + assignment + sort).
    """

    bank: PreparedBank
    centroids: PreparedBank
    tables: npt.NDArray[np.float32]
    invalid: npt.NDArray[np.bool_]
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
        nprobe: int | npt.ArrayLike | None = None,
        nprobe_full: int | npt.ArrayLike | None = None,
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """Approximate masked kNN: same inputs and outputs as posebank.search.masked_knn.

        nprobe, nprobe_full: cells scanned per partial-mask / full-body query (defaults: config
        ivf_nprobe, ivf_nprobe_full), one number or one per query (Q,); more is slower and closer to exact.
        """
        if not 1 <= k <= self.bank.num_rows:
            raise ValueError(f"k must be in [1, N={self.bank.num_rows}], got {k}")
        queries = prepare_queries(queries_2d, masks, self.bank.num_joints)
        return self.search_batch(queries, k, nprobe=nprobe, nprobe_full=nprobe_full)

    def search_batch(
        self,
        queries: QueryBatch,
        k: int,
        *,
        nprobe: int | npt.ArrayLike | None = None,
        nprobe_full: int | npt.ArrayLike | None = None,
        k_query: npt.ArrayLike | None = None,
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """search() on an already validated QueryBatch. k_query (Q,): each query's own k (<= k), when
        queries of several k share the call; the rest of its row is padding (inf, -1)."""
        q = queries.num_queries
        k_final, k = k, candidates_per_query(self.bank, k, self.config.rerank_margin)
        wanted = np.full(q, k) if k_query is None else np.minimum(np.asarray(k_query) + self.config.rerank_margin, k)
        partial = self._probes(nprobe, self.config.ivf_nprobe, q)
        full = self._probes(nprobe_full, self.config.ivf_nprobe_full, q)
        block = self.config.query_block_rows or DEFAULT_QUERY_BLOCK_ROWS
        ids = np.concatenate(
            [
                self._candidates(queries.subset(sl), k_final, k, wanted[sl], partial[sl], full[sl])
                for sl in (slice(q0, q0 + block) for q0 in range(0, q, block))
            ]
            or [np.zeros((0, k), dtype=np.int64)]
        )
        distances, ids = finalize(self.bank, queries.qbar, queries.masks, ids, k_final)
        if k_query is not None:  # a query's re-ranking margin may have filled slots past its own k
            beyond = np.arange(ids.shape[1]) >= np.asarray(k_query)[:, None]
            distances[beyond], ids[beyond] = np.inf, -1
        return distances, ids

    def _probes(self, given: int | npt.ArrayLike | None, default: int, num_queries: int) -> npt.NDArray[np.int64]:
        """(Q,) cells to scan per query, from one number or one per query (None: `default`), at most nlist."""
        probes = np.broadcast_to(np.asarray(default if given is None else given, dtype=np.int64), (num_queries,))
        if num_queries and probes.min() < 1:
            raise ValueError(f"cells to scan per query must be >= 1, got {probes.min()}")
        return np.minimum(probes, self.nlist)

    def _candidates(
        self,
        queries: QueryBatch,
        k_cell: int,
        k: int,
        wanted: npt.NDArray[np.int64],
        nprobe: npt.NDArray[np.int64],
        nprobe_full: npt.NDArray[np.int64],
    ) -> npt.NDArray[np.int64]:
        """Best rows (Q, k) int64 of each query within its probed cells, unsorted (-1: none): wanted (Q,) <= k
        of them per query; nprobe and nprobe_full (Q,): the cells each query scans if its mask is partial /
        full-body.

        Two passes. The first scans each query's nearest cell and keeps its best `wanted` rows: the
        last of them scores a bar that every row of the answer clears. The second scans the other probed
        cells and keeps only the rows above that bar, found by one comparison per score (a selection over
        every score cost several times the GEMM that made it). A cell's rows above the bar, when more
        than _CROWDED x k_cell for one query, are cut to its best k_cell (k_cell = k, the caller's,
        suffices for the near-tie margin, which the candidates of all cells already cover); fewer are
        all kept, and sorted once at the end (cutting each cell's cost more than the sort).
        """
        # Full-body queries first, then the others by mask: within a cell, the queries that need a
        # normaliser are then one slice, and those of one mask are contiguous.
        full = queries.unique_masks[queries.group].all(axis=1)
        order = np.lexsort((queries.group, ~full))
        queries = queries.subset(order)
        num_full = int(full.sum())
        probes, wanted = np.where(full, nprobe_full, nprobe)[order], wanted[order]
        widest = int(probes.max()) if len(probes) else 1
        # Step 1: cells by masked distance to the centroids (exact search over nlist rows).
        cosines, cells = blas_topk(self.centroids, queries, widest, replace(self.config, bank_block_rows=None))
        cells = np.take_along_axis(cells, np.argsort(-cosines, axis=1, kind="stable"), axis=1)  # nearest first
        cells[np.arange(widest) >= probes[:, None]] = -1  # not scanned
        query_xy = split_xy(queries.qbar)
        # Step 2a: the nearest cell of every query, its best k rows, and the bar they set: its wanted-th best
        # (-inf, no bar, when the cell holds fewer rows).
        first_q, first_ids, first_scores = self._scan(queries, query_xy, num_full, cells[:, :1], k, None)
        by_query = _best_first(first_q, first_scores)
        at_bar = by_query[_rank_within(first_q[by_query]) == wanted[first_q[by_query]] - 1]
        bar = np.full(queries.num_queries, -np.inf, dtype=np.float32)
        bar[first_q[at_bar]] = first_scores[at_bar]
        # Step 2b: the other probed cells, only rows above the bar.
        more_q, more_ids, more_scores = self._scan(queries, query_xy, num_full, cells[:, 1:], k_cell, bar)
        # Step 3: best k per query of both passes.
        q = np.concatenate([first_q, more_q])
        ids = np.concatenate([first_ids, more_ids])
        scores = np.concatenate([first_scores, more_scores])
        best = _best_first(q, scores)
        q, ids = q[best], ids[best]
        rank = _rank_within(q)
        keep = rank < wanted[q]
        out = np.full((queries.num_queries, k), -1, dtype=np.int64)
        out[order[q[keep]], rank[keep]] = ids[keep]
        return out

    def _scan(
        self,
        queries: QueryBatch,
        query_xy: npt.NDArray[np.float32],
        num_full: int,
        cells: npt.NDArray[np.int64],
        k_cell: int,
        bar: npt.NDArray[np.float32] | None,
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """Scan the cells (Q, P) of each query (-1: none): per (query, cell) its best k_cell rows, or
        those above bar (Q,) when given (_scan_cell). Returns flat (query, bank row id, score) triples, in
        an order that depends on the inputs alone (cell by cell), not on the threads."""
        flat = cells.reshape(-1)
        width = cells.shape[1]
        pairs_by_cell = np.argsort(flat, kind="stable")  # stable: each cell's queries stay in order
        bounds = np.searchsorted(flat[pairs_by_cell], np.arange(self.nlist + 1))
        work = [(c, pairs_by_cell[bounds[c] : bounds[c + 1]] // width) for c in range(self.nlist) if bounds[c + 1] > bounds[c]]
        parts: dict[int, tuple[npt.NDArray[np.intp], npt.NDArray[np.int64], npt.NDArray[np.float32]]] = {}

        def scan(chunk: list[tuple[int, npt.NDArray[np.intp]]]) -> None:
            for cell, rows in chunk:
                r, cols, found = self._scan_cell(queries, query_xy, num_full, cell, rows, k_cell, bar)
                parts[cell] = (rows[r], self.row_ids[self.cell_start[cell] + cols], found)  # one key per thread

        threads = min(cpu_threads(self.config.threads), len(work)) or 1
        with single_threaded_blas():
            if threads == 1:
                scan(work)
            else:
                with ThreadPoolExecutor(max_workers=threads) as pool:
                    list(pool.map(scan, [work[i::threads] for i in range(threads)]))
        if not parts:
            return np.zeros(0, np.intp), np.zeros(0, np.int64), np.zeros(0, np.float32)
        q, ids, scores = (np.concatenate(a) for a in zip(*(parts[c] for c in sorted(parts))))
        finite = np.isfinite(scores)
        return q[finite], ids[finite], scores[finite]

    def _scan_cell(
        self,
        queries: QueryBatch,
        query_xy: npt.NDArray[np.float32],
        num_full: int,
        cell: int,
        rows: npt.NDArray[np.intp],
        k: int,
        bar: npt.NDArray[np.float32] | None,
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.float32]]:
        """Exact masked cosines in the cell for the queries `rows` (ascending; rows < num_full are the
        full-body ones, as _candidates sorts them): per query its best k (more on ties), or when bar is
        given its rows above bar[query] (its best k if more than _CROWDED x k). Returns flat (index
        into rows, column in the cell, cosine) triples."""
        lo, hi = self.cell_start[cell], self.cell_start[cell + 1]
        j = queries.num_joints
        tables = self.tables[:, lo:hi]
        scores = query_xy[rows] @ tables[j:]  # <q̄, b>: the full-body cosine (prepared rows have unit norm)
        split = int(np.searchsorted(rows, num_full))
        invalid = self.invalid[lo:hi]
        if split and invalid.any():
            scores[:split, invalid] = -np.inf
        if split < len(rows):
            group = queries.group[rows[split:]]  # sorted: label its runs (np.unique would sort again)
            new_mask = np.flatnonzero(np.diff(group)) + 1
            local = np.zeros(len(group), dtype=np.intp)
            local[new_mask] = 1
            np.cumsum(local, out=local)
            masks = queries.unique_masks[group[np.concatenate(([0], new_mask))]]
            inv_spread, degenerate = tables_inverse_spread(tables, masks, self.bank.degenerate_eps)
            partial = scores[split:]  # a view: scaled in place
            partial *= inv_spread[local]
            if degenerate.any():
                partial[degenerate[local]] = -np.inf
        n = scores.shape[1]
        if bar is None:
            if k >= n:
                return np.repeat(np.arange(len(rows)), n), np.tile(np.arange(n), len(rows)), scores.reshape(-1)
            # Each row's k-th best value (a partition of the values, no indices: 1.4x faster than
            # argpartition here), then the rows at or above it, as below.
            kth = np.partition(scores, n - k, axis=1)[:, n - k]
            r, cols = np.divmod(np.flatnonzero(scores >= kth[:, None]), n)
            return r, cols, scores[r, cols]
        # flatnonzero, then divmod: 2D np.nonzero took 15x longer, and was most of the scan.
        r, cols = np.divmod(np.flatnonzero(scores > bar[rows][:, None]), n)
        crowded = np.bincount(r, minlength=len(rows)) > _CROWDED * k  # then only their best k count
        if crowded.any():
            sparse = ~crowded[r]
            r, cols = r[sparse], cols[sparse]
            dense = np.flatnonzero(crowded)
            dense_cols, _ = top_k(scores[dense], k)
            r = np.concatenate([r, np.repeat(dense, dense_cols.shape[1])])
            cols = np.concatenate([cols, dense_cols.reshape(-1)])
        return r, cols, scores[r, cols]


def _best_first(query: npt.NDArray[np.intp], scores: npt.NDArray[np.float32]) -> npt.NDArray[np.intp]:
    """The order of (query, score) pairs by query, then score from best: one argsort of query x 4 - score
    (cosines lie in [-1, 1], so the queries' keys never mix), 2.5x faster than lexsort of the two keys."""
    return np.argsort(query * 4.0 - scores.astype(np.float64))


def _rank_within(sorted_keys: npt.NDArray[np.integer]) -> npt.NDArray[np.intp]:
    """0, 1, 2, ... within each run of equal keys of a sorted array (the rank of each entry in its group)."""
    n = len(sorted_keys)
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]) if n else np.zeros(0, np.intp)
    return np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))


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
    N rows, and a copy of the tables (3J x N float32, transposed) in cell order (BENCHMARKS.md gives times).
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
    # Filled in slices of rows: a sorted copy of the whole block's coordinates would add a fifth to the
    # peak memory of the build, which the --memory-gb budget has to hold.
    tables = np.empty((3 * bank.num_joints, n), dtype=np.float32)
    invalid = np.empty(n, dtype=bool)
    for a in range(0, n, _BUILD_SLICE_ROWS):
        ids = row_ids[a : a + _BUILD_SLICE_ROWS]
        sqnorm = bank.sqnorm[ids]
        tables[:, a : a + len(ids)] = joint_tables(bank.coords[ids], sqnorm)
        invalid[a : a + len(ids)] = sqnorm.sum(axis=1) <= 0.5
    seconds = time.perf_counter() - t0
    LOG.info("faiss-ivf: built %d cells over %d rows in %.1f s", nlist, n, seconds)
    return IvfMaskedIndex(
        bank=bank,
        centroids=centroids,
        tables=tables,
        invalid=invalid,
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
