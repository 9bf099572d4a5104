"""Masked nearest-neighbour search against a bank on disk, streamed in blocks (bounded memory).

posebank.search scores arrays; this module feeds it the bank's Parquet shards block by block, merges
the per-block top-k (adding each block's row offset), and gathers the matched rows' poses and ids.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..bank import Bank
from ..progress import ProgressFactory, no_progress
from ..search import SearchConfig, masked_knn, prepare_bank


@dataclass(frozen=True)
class Matches:
    """The k best bank rows of Q queries, best first.

    Attributes:
        distances: (Q, k) float32 eq. 9 distances in [0, 2] (inf: no valid row).
        rows: (Q, k) int64 global bank row indices (-1: none).
    """

    distances: npt.NDArray[np.float32]
    rows: npt.NDArray[np.int64]


@dataclass(frozen=True)
class MatchedPoses:
    """What the matched bank rows hold, (Q, k, ...) in the order of `Matches.rows`."""

    pose_2d: npt.NDArray[np.float32]  # (Q, k, J, 2) orthographic, metres
    pose_3d: npt.NDArray[np.float32]  # (Q, k, J, 3) camera frame, body-centred, metres
    pose_id: npt.NDArray[np.int64]  # (Q, k)
    view_id: npt.NDArray[np.int32]  # (Q, k)


def merge_topk(
    d_a: npt.NDArray[np.float32], i_a: npt.NDArray[np.int64], d_b: npt.NDArray[np.float32], i_b: npt.NDArray[np.int64], k: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:  # fmt: skip
    """The k smallest of two (Q, *) candidate lists, sorted; ties keep the earlier list first."""
    d = np.concatenate([d_a, d_b], axis=1)
    i = np.concatenate([i_a, i_b], axis=1)
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(d, order, 1), np.take_along_axis(i, order, 1)


def search_bank(
    bank: Bank,
    queries_2d: npt.NDArray[np.floating],
    masks: npt.NDArray[np.bool_],
    k: int,
    *,
    config: SearchConfig | None = None,
    block_rows: int = 1 << 21,
    progress: ProgressFactory | None = None,
    description: str = "searching the bank",
) -> Matches:
    """Exact masked top-k of each query over the whole bank, reading it in blocks of `block_rows`.

    Args:
        bank: an opened bank.
        queries_2d: (Q, J, 2) any units (pixels); joints outside the mask are ignored.
        masks: (Q, J) bool, at least 2 joints each (non-degenerate).
        k: neighbours per query.
        progress: reports the bank blocks as they are searched.
    """
    q = len(queries_2d)
    best_d = np.full((q, k), np.inf, np.float32)
    best_i = np.full((q, k), -1, np.int64)
    if q == 0:
        return Matches(best_d, best_i)
    offset = 0
    blocks = bank.iter_poses(columns=("pose_2d",), batch_size=block_rows)
    for batch in (progress or no_progress)(blocks, description, -(-bank.num_rows // block_rows)):
        block = batch["pose_2d"]
        kk = min(k, len(block))
        d, i = masked_knn(prepare_bank(block), queries_2d, masks, kk, config=config)
        # Block-local row ids become global ones: the offset of this block in the bank.
        i = np.where(i >= 0, i + offset, -1)
        best_d, best_i = merge_topk(best_d, best_i, d, i, k)
        offset += len(block)
    return Matches(best_d, best_i)


def gather_matches(bank: Bank, rows: npt.NDArray[np.int64]) -> MatchedPoses:
    """The poses and ids of bank rows (Q, k) (-1 rows give NaN poses and id -1)."""
    shape = rows.shape
    flat = rows.reshape(-1)
    valid = flat >= 0
    unique, inverse = np.unique(flat[valid], return_inverse=True)
    j = bank.skeleton.num_joints
    pose_2d = np.full((len(flat), j, 2), np.nan, np.float32)
    pose_3d = np.full((len(flat), j, 3), np.nan, np.float32)
    pose_id = np.full(len(flat), -1, np.int64)
    view_id = np.full(len(flat), -1, np.int32)
    if len(unique):
        taken = bank.take(unique, columns=("pose_2d", "pose_3d", "pose_id", "view_id"))
        pose_2d[valid] = taken["pose_2d"][inverse]
        pose_3d[valid] = taken["pose_3d"][inverse]
        pose_id[valid] = taken["pose_id"][inverse]
        view_id[valid] = taken["view_id"][inverse]
    return MatchedPoses(pose_2d.reshape(*shape, j, 2), pose_3d.reshape(*shape, j, 3), pose_id.reshape(shape),
                        view_id.reshape(shape))  # fmt: skip
