"""Running top-k (largest scores) over a stream of score blocks, in numpy.

The selection, not the GEMM, is the expensive part of a CPU search with 26-dimensional vectors:
np.argpartition over every (queries x bank block) tile costs ~5x the GEMM. Cheaper steps instead:
- k = 1: one argmax over the tile (a SIMD pass) and a compare with the running best;
- k > 1: rows whose best score in the block does not beat their running k-th best are skipped
  (after a few blocks that is most rows). For the others the columns are split into groups
  ("chunks") of CHUNK columns and only the chunk maxima are reduced over the whole row. The k best
  entries of a row lie in the k chunks with the largest maxima (a chunk holding one of them has a
  maximum >= the k-th best value, and at most k chunks can), so only those k chunks are gathered
  and searched. Chunk c is the strided column set {c, c + n/CHUNK, c + 2 n/CHUNK, ...}: its maximum
  is then an elementwise maximum of CHUNK contiguous vectors, which numpy vectorises (~5x faster
  than reducing contiguous runs of columns).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


CHUNK = 16  # columns per chunk (measured best of 16..128); other block widths use plain argpartition
_ITERATIVE_MAX_K = 16  # up to this k, k rounds of argmax beat np.argpartition (6x at 512 columns)


def top_k(scores: npt.NDArray[np.float32], k: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float32]]:
    """Columns (R, min(k, C)) of the largest entries of each row of scores (R, C), and their values.

    Any order within a row. When a row has fewer than k finite entries the extra slots hold -inf
    (their columns may repeat): callers treat -inf as "no candidate".
    """
    rows, cols = scores.shape
    if k >= cols:
        return np.broadcast_to(np.arange(cols), scores.shape), scores
    if k == 1:
        best = scores.argmax(axis=1)[:, None]
        return best, np.take_along_axis(scores, best, axis=1)
    if k <= _ITERATIVE_MAX_K and cols > 2 * k:
        work = scores.copy()
        out_cols = np.empty((rows, k), dtype=np.intp)
        out_vals = np.empty((rows, k), dtype=scores.dtype)
        every = np.arange(rows)
        for j in range(k):
            best = work.argmax(axis=1)
            out_cols[:, j] = best
            out_vals[:, j] = work[every, best]  # -inf once a row is exhausted, so repeats never count
            work[every, best] = -np.inf
        return out_cols, out_vals
    best = np.argpartition(scores, cols - k, axis=1)[:, cols - k :]
    return best, np.take_along_axis(scores, best, axis=1)


class RunningTopK:
    """The k largest scores seen so far for each of `num_queries` queries, and their bank row ids.

    Scores of -inf never enter (that is how degenerate bank rows are kept out); slots never filled
    keep id -1 and score -inf.
    """

    def __init__(self, num_queries: int, k: int):
        self.k = k
        self.scores = np.full((num_queries, k), -np.inf, dtype=np.float32)
        self.ids = np.full((num_queries, k), -1, dtype=np.int64)
        self._kth = np.full(num_queries, -np.inf, dtype=np.float32)

    def add(self, scores: npt.NDArray[np.float32], offset: int) -> None:
        """Merge a block of scores (num_queries, Nb) for bank rows offset .. offset + Nb - 1."""
        nq, nb = scores.shape
        if self.k == 1:
            # argmax over the whole tile is one SIMD pass: cheaper than filtering rows first.
            cols = scores.argmax(axis=1)
            vals = np.take_along_axis(scores, cols[:, None], axis=1)[:, 0]
            better = vals > self.scores[:, 0]
            self.scores[better, 0] = vals[better]
            self.ids[better, 0] = cols[better] + offset  # block offset: ids are rows of the whole bank
            return
        if nb % CHUNK or nb // CHUNK <= self.k:
            rows = np.flatnonzero(scores.max(axis=1) > self._kth)
            if rows.size == 0:
                return
            cols, new_scores = top_k(scores[rows], self.k)
        else:
            num_chunks = nb // CHUNK
            chunk_max = scores.reshape(nq, CHUNK, num_chunks).max(axis=1)  # (nq, num_chunks)
            rows = np.flatnonzero(chunk_max.max(axis=1) > self._kth)
            if rows.size == 0:
                return
            best_chunks, chunk_best = top_k(chunk_max[rows], self.k)  # (R, k)
            cand = (best_chunks[:, :, None] + num_chunks * np.arange(CHUNK)).reshape(len(rows), -1)
            sub = np.take(scores, rows[:, None] * nb + cand)  # (R, k * CHUNK), gathered from the flat tile
            # A row with fewer than k finite chunks gets repeated chunk indices (value -inf): blank
            # their copies, or a finite entry would be gathered, and returned, twice.
            sub[np.repeat(np.isneginf(chunk_best), CHUNK, axis=1)] = -np.inf
            best, new_scores = top_k(sub, self.k)
            cols = np.take_along_axis(cand, best, axis=1)
        new_ids = cols.astype(np.int64) + offset  # block offset: ids are rows of the whole bank
        self.scores[rows], self.ids[rows] = merge_topk(self.scores[rows], self.ids[rows], new_scores, new_ids, self.k)
        self._kth[rows] = self.scores[rows].min(axis=1)

    @property
    def filled_ids(self) -> npt.NDArray[np.int64]:
        """(num_queries, k) ids with -1 wherever the score is -inf (slot never filled by a valid row)."""
        return np.where(np.isneginf(self.scores), -1, self.ids)


def merge_topk(
    scores_a: npt.NDArray[np.float32],
    ids_a: npt.NDArray[np.int64],
    scores_b: npt.NDArray[np.float32],
    ids_b: npt.NDArray[np.int64],
    k: int,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Merge two (Q, ka) and (Q, kb) top lists into the k best (largest scores) of each row, any order."""
    scores = np.concatenate((scores_a, scores_b), axis=1)
    ids = np.concatenate((ids_a, ids_b), axis=1)
    keep, out_scores = top_k(scores, k)
    out_ids = np.where(np.isneginf(out_scores), -1, np.take_along_axis(ids, keep, axis=1))
    return out_scores, out_ids
