"""A fused masked top-k kernel in Triton: scores and keeps the best bank rows without a score matrix.

The torch engine's matmul path writes a (queries x bank block) float32 score tile to GPU memory, scales
it, masks it and runs torch.topk over it: memory traffic, not arithmetic, bounds it. Here one program
takes a block of queries that share one mask and a slice of the bank, and for each tile of bank rows

1. computes the tile's masked spread from the bank tables (prepared.py): for the block's mask S,
   ||b_S - mean_S(b)||^2 = sum_S ||b_j||^2 - ||sum_S b_j||^2 / |S|, once per bank row, shared by
   the block's queries;
2. the dot products <q̄, b> as two tl.dot (x and y columns) in IEEE float32 (no TF32: it would blur
   cosines at ~1e-3 and reorder near neighbours);
3. the cosines, -inf for degenerate rows, and merges the tile's best into a running top-KP list per
   query held in registers.

Each program writes its KP best (score, row) per query; the host keeps the best over the bank slices
(a (Q, slices x KP) torch.topk). The caller re-ranks the candidates in float64 (prepared.finalize), as
with every engine, so results equal the reference's up to ties.

It runs wherever Triton does: CUDA GPUs, and the CPU under TRITON_INTERPRET=1 (how the tests check it,
slowly). Import this module only after deciding to use it: it imports triton.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch
import triton
import triton.language as tl

BLOCK_QUERIES = 64  # queries per program (one mask each)
BLOCK_ROWS = 128  # bank rows per tile


@triton.jit
def _masked_topk_kernel(
    qbar_ptr,  # (Q, 2J) float32 normalised queries, sorted by mask
    coords_ptr,  # (N, 2J) float32 prepared bank rows, (joint, coord) row-major
    sqnorm_ptr,  # (N, J) float32 squared joint norms of the prepared rows
    masks_ptr,  # (G, J) float32 0/1, the distinct masks
    block_start_ptr,  # (B,) int32 first query of each query block
    block_count_ptr,  # (B,) int32 queries in each block (<= BLOCK_Q)
    block_mask_ptr,  # (B,) int32 mask of each block
    out_score_ptr,  # (Q, S, KP) float32 best cosines per query and bank slice
    out_row_ptr,  # (Q, S, KP) int32 their bank rows (-1: none)
    num_rows,
    rows_per_slice,
    num_slices,
    eps_sq,
    J: tl.constexpr,
    JP: tl.constexpr,  # J rounded up to a power of two >= 16 (tl.dot's smallest inner size)
    KP: tl.constexpr,  # candidates kept per query, a power of two
    BLOCK_Q: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    block = tl.program_id(0)
    part = tl.program_id(1)
    q0 = tl.load(block_start_ptr + block)
    count = tl.load(block_count_ptr + block)
    mask_id = tl.load(block_mask_ptr + block)

    qi = tl.arange(0, BLOCK_Q)
    jj = tl.arange(0, JP)
    q_ok = qi < count
    j_ok = jj < J
    q_offsets = (q0 + qi)[:, None] * (2 * J) + jj[None, :] * 2
    qx = tl.load(qbar_ptr + q_offsets, mask=q_ok[:, None] & j_ok[None, :], other=0.0)
    qy = tl.load(qbar_ptr + q_offsets + 1, mask=q_ok[:, None] & j_ok[None, :], other=0.0)
    weight = tl.load(masks_ptr + mask_id * J + jj, mask=j_ok, other=0.0)
    inv_count = 1.0 / tl.sum(weight, axis=0)

    kcol = tl.arange(0, KP)
    best = tl.full((BLOCK_Q, KP), float("-inf"), tl.float32)
    best_row = tl.full((BLOCK_Q, KP), -1, tl.int32)
    lo = part * rows_per_slice
    hi = tl.minimum(lo + rows_per_slice, num_rows)
    for n0 in range(lo, hi, BLOCK_N):
        rn = tl.arange(0, BLOCK_N)
        rows = n0 + rn
        r_ok = rows < hi
        tile_mask = j_ok[:, None] & r_ok[None, :]
        b_offsets = rows[None, :] * (2 * J) + jj[:, None] * 2
        bx = tl.load(coords_ptr + b_offsets, mask=tile_mask, other=0.0)  # (JP, BLOCK_N)
        by = tl.load(coords_ptr + b_offsets + 1, mask=tile_mask, other=0.0)
        bsq = tl.load(sqnorm_ptr + rows[None, :] * J + jj[:, None], mask=tile_mask, other=0.0)
        sum_sq = tl.sum(bsq * weight[:, None], axis=0)  # (BLOCK_N,)
        sum_x = tl.sum(bx * weight[:, None], axis=0)
        sum_y = tl.sum(by * weight[:, None], axis=0)
        spread_sq = sum_sq - (sum_x * sum_x + sum_y * sum_y) * inv_count
        valid = (spread_sq > eps_sq) & r_ok
        inv_spread = tl.where(valid, 1.0 / tl.sqrt(tl.maximum(spread_sq, eps_sq)), 0.0)
        dots = tl.dot(qx, bx, input_precision="ieee") + tl.dot(qy, by, input_precision="ieee")
        score = tl.where(valid[None, :], dots * inv_spread[None, :], float("-inf"))
        # Merge: up to KP times, the tile's best replaces the running list's worst when better. Once
        # the lists are good, most tiles improve no query of the block, so a round is skipped then.
        for _ in tl.static_range(KP):
            tile_best = tl.max(score, axis=1)
            worst = tl.min(best, axis=1)
            if tl.max((tile_best > worst).to(tl.int32), axis=0) > 0:
                tile_arg = tl.argmax(score, axis=1)
                worst_pos = tl.argmin(best, axis=1)
                put = (tile_best > worst)[:, None] & (kcol[None, :] == worst_pos[:, None])
                best = tl.where(put, tile_best[:, None], best)
                best_row = tl.where(put, (n0 + tile_arg)[:, None], best_row)
                score = tl.where(rn[None, :] == tile_arg[:, None], float("-inf"), score)

    out_offsets = ((q0 + qi)[:, None] * num_slices + part) * KP + kcol[None, :]
    tl.store(out_score_ptr + out_offsets, best, mask=q_ok[:, None])
    tl.store(out_row_ptr + out_offsets, best_row, mask=q_ok[:, None])


def _query_blocks(group_sorted: npt.NDArray[np.int64], block: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start, count, mask) of query blocks that never straddle two masks; queries sorted by mask."""
    starts, counts, masks = [], [], []
    edges = np.flatnonzero(np.diff(group_sorted)) + 1
    for lo, hi in zip(np.r_[0, edges], np.r_[edges, len(group_sorted)]):
        for s in range(int(lo), int(hi), block):
            starts.append(s)
            counts.append(min(block, int(hi) - s))
            masks.append(int(group_sorted[lo]))
    return (np.asarray(starts, np.int32), np.asarray(counts, np.int32), np.asarray(masks, np.int32))


def fused_masked_topk(
    qbar_sorted: torch.Tensor,
    group_sorted: npt.NDArray[np.int64],
    masks: npt.NDArray[np.bool_],
    coords: torch.Tensor,
    sqnorm: torch.Tensor,
    k: int,
    eps_sq: float,
    *,
    slices: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Best k masked cosines of every query over a bank (shard), by the fused kernel.

    Args:
        qbar_sorted: (Q, 2J) float32 normalised queries on the bank's device, sorted by mask.
        group_sorted: (Q,) int64 row of each query's mask in `masks`, non-decreasing.
        masks: (G, J) bool distinct masks.
        coords, sqnorm: (N, 2J) and (N, J) float32 prepared bank tables on the device.
        k: candidates per query (<= N).
        eps_sq: squared degenerate threshold (PreparedBank.degenerate_eps ** 2).
        slices: bank slices (programs per query block); default: enough programs for the device.

    Returns:
        scores (Q, k) float32 (-inf: none) and rows (Q, k) int64 (-1: none), best first.
    """
    device = coords.device
    num_queries, num_rows = qbar_sorted.shape[0], coords.shape[0]
    num_joints = sqnorm.shape[1]
    kp = max(2, triton.next_power_of_2(k))
    starts, counts, mask_ids = _query_blocks(group_sorted, BLOCK_QUERIES)
    if slices is None:
        programs = 8 * (torch.cuda.get_device_properties(device).multi_processor_count if device.type == "cuda" else 1)
        slices = max(1, min(triton.cdiv(num_rows, BLOCK_ROWS), triton.cdiv(programs, len(starts))))
    rows_per_slice = triton.cdiv(triton.cdiv(num_rows, slices), BLOCK_ROWS) * BLOCK_ROWS
    slices = triton.cdiv(num_rows, rows_per_slice)
    out_score = torch.empty((num_queries, slices, kp), dtype=torch.float32, device=device)
    out_row = torch.empty((num_queries, slices, kp), dtype=torch.int32, device=device)
    tables = [torch.from_numpy(a).to(device) for a in (masks.astype(np.float32), starts, counts, mask_ids)]
    _masked_topk_kernel[(len(starts), slices)](
        qbar_sorted.contiguous(), coords.contiguous(), sqnorm.contiguous(), *tables,
        out_score, out_row, num_rows, rows_per_slice, slices, float(eps_sq),
        J=num_joints, JP=max(16, triton.next_power_of_2(num_joints)), KP=kp,
        BLOCK_Q=BLOCK_QUERIES, BLOCK_N=BLOCK_ROWS,
    )  # fmt: skip
    scores, pos = out_score.reshape(num_queries, -1).topk(min(k, slices * kp), dim=1)
    rows = out_row.reshape(num_queries, -1).gather(1, pos).to(torch.int64)
    return scores, torch.where(torch.isfinite(scores), rows, torch.full_like(rows, -1))
