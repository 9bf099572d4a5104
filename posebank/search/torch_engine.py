"""The "torch" engine: exact masked kNN with torch.matmul + topk, on CUDA when available, else CPU.

Same maths as the blas engine (prepared.py): per tile of (queries sorted by mask) x (bank rows), the
per-mask normalisers come from the bank tables by two small matmuls, the cosines by one matmul, and
torch.topk keeps the best rows; per-block winners are merged with the running top-k, ids offset by
the block start and the shard start.

Several devices: the bank is cut into one contiguous shard per device (every CUDA device by default),
each device streams its shard, and the per-shard top-k lists are merged at the end. Work for all
devices is enqueued block by block without host synchronisation, so GPUs run concurrently. The same
code runs with shard_devices=("cpu", "cpu"), which is how the tests exercise the split and merge.

With SearchConfig(torch_kernel="triton") each shard is instead searched by one fused Triton kernel
(triton_kernel.py: tile dot products, per-row scaling, -inf masking and a running top-k in registers,
never writing the score tile). It is checked against the reference on the CPU in Triton's interpreter;
its GPU speed is measured by bench/gpu_search_anchors.py. "matmul" stays the default until that
measurement is in BENCHMARKS.md.

Precision: TF32 matmuls (torch.set_float32_matmul_precision("high")) would blur cosines at ~1e-3 and
reorder near neighbours, so the engine warns when the global setting is not "highest". Distances
returned are recomputed exactly on the host whatever the precision (prepared.exact_distances).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

from .config import SearchConfig
from .inputs import QueryBatch
from .prepared import PreparedBank, candidates_per_query, finalize, mask_weights
from .topk import merge_topk

LOG = logging.getLogger(__name__)

# (query block, bank block): a CUDA tile of 1024 x 262144 float32 scores is 1 GiB; the CPU tile stays in cache.
DEFAULT_BLOCKS = {"cuda": (1024, 262144), "cpu": (256, 8192)}


def resolve_devices(config: SearchConfig) -> list[torch.device]:
    """The devices to shard the bank over: config.shard_devices, else from config.device."""
    if config.shard_devices:
        return [torch.device(d) for d in config.shard_devices]
    if config.device == "auto":
        if torch.cuda.is_available():
            return [torch.device("cuda", i) for i in range(torch.cuda.device_count())]
        return [torch.device("cpu")]
    if config.device == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device 'cuda' requested but torch sees no CUDA device")
        return [torch.device("cuda", i) for i in range(torch.cuda.device_count())]
    return [torch.device(config.device)]


def masked_inverse_spread_torch(
    coords: torch.Tensor,
    sqnorm: torch.Tensor,
    w_sq: torch.Tensor,
    w_xy: torch.Tensor,
    inv_count: torch.Tensor,
    eps_sq: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Torch twin of prepared.masked_inverse_spread: (M, Nb) inverse masked spreads and degenerate flags.

    Args:
        coords: (Nb, 2J), sqnorm: (Nb, J) float32 bank rows; w_sq (M, J), w_xy (2M, 2J) from
            prepared.mask_weights; inv_count (M, 1) = 1/|S|.
    """
    spread_sq = w_sq @ sqnorm.T
    sums = (w_xy @ coords.T).view(w_sq.shape[0], 2, -1)
    spread_sq = spread_sq - (sums[:, 0] ** 2 + sums[:, 1] ** 2) * inv_count
    degenerate = spread_sq <= eps_sq
    inv = torch.rsqrt(spread_sq.clamp_min(eps_sq)).masked_fill_(degenerate, 0.0)
    return inv, degenerate


def score_topk_block(
    qbar: torch.Tensor,
    local_mask: torch.Tensor,
    coords: torch.Tensor,
    inv_spread: torch.Tensor,
    degenerate: torch.Tensor,
    k: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k masked cosines of queries against one bank block: the step a fused kernel would replace.

    Args:
        qbar: (Qb, 2J) normalised queries; local_mask: (Qb,) int64 row of each query in inv_spread.
        coords: (Nb, 2J) bank rows; inv_spread, degenerate: (M, Nb) from masked_inverse_spread_torch.

    Returns:
        scores (Qb, min(k, Nb)) float32 and column indices (Qb, min(k, Nb)) int64 within the block.
    """
    scores = qbar @ coords.T
    scores.mul_(inv_spread[local_mask])
    # On the CPU, skip the (Qb, Nb) masking when the block has no degenerate row; on a GPU the test
    # would be a host sync, which stalls the other devices, so the masking always runs there.
    if scores.device.type != "cpu" or bool(degenerate.any()):
        scores.masked_fill_(degenerate[local_mask], float("-inf"))
    return scores.topk(min(k, scores.shape[1]), dim=1)


def _merge(
    scores: torch.Tensor, ids: torch.Tensor, new_scores: torch.Tensor, new_ids: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    all_scores = torch.cat((scores, new_scores), dim=1)
    all_ids = torch.cat((ids, new_ids), dim=1)
    best, pos = all_scores.topk(k, dim=1)
    return best, all_ids.gather(1, pos)


@dataclass
class _Shard:
    """A contiguous slice of the bank tables on one device; `offset` is its first bank row."""

    offset: int
    coords: torch.Tensor  # (Ns, 2J) float32
    sqnorm: torch.Tensor  # (Ns, J) float32


@dataclass
class _ShardRun:
    """One block of queries streaming through one shard: inputs on the shard's device, running top-k."""

    shard: _Shard
    qbar: torch.Tensor  # (Qb, 2J)
    local_mask: torch.Tensor  # (Qb,) row of each query in the block's mask tables
    w_sq: torch.Tensor  # (M, J)
    w_xy: torch.Tensor  # (2M, 2J)
    inv_count: torch.Tensor  # (M, 1)
    best: torch.Tensor  # (Qb, k) float32 running best cosines
    best_ids: torch.Tensor  # (Qb, k) int64 their bank rows


def _start_run(shard: _Shard, qbar: np.ndarray, local: np.ndarray, masks: np.ndarray, k: int) -> _ShardRun:
    dev = shard.coords.device
    w_sq, w_xy = mask_weights(masks)
    inv_count = (1.0 / w_sq.sum(axis=1, keepdims=True)).astype(np.float32)
    return _ShardRun(
        shard=shard,
        qbar=torch.from_numpy(qbar).to(dev),
        local_mask=torch.from_numpy(local.astype(np.int64)).to(dev),
        w_sq=torch.from_numpy(w_sq).to(dev),
        w_xy=torch.from_numpy(w_xy).to(dev),
        inv_count=torch.from_numpy(inv_count).to(dev),
        best=torch.full((len(qbar), k), float("-inf"), device=dev),
        best_ids=torch.full((len(qbar), k), -1, dtype=torch.int64, device=dev),
    )


def _step(run: _ShardRun, i0: int, bank_block: int, k: int, eps_sq: float) -> None:
    """Score rows i0 .. i0 + bank_block of the run's shard and merge them into its running top-k."""
    coords = run.shard.coords[i0 : i0 + bank_block]
    sqnorm = run.shard.sqnorm[i0 : i0 + bank_block]
    inv, deg = masked_inverse_spread_torch(coords, sqnorm, run.w_sq, run.w_xy, run.inv_count, eps_sq)
    vals, cols = score_topk_block(run.qbar, run.local_mask, coords, inv, deg, k)
    # Offsets: block start within the shard, plus the shard's start in the bank.
    run.best, run.best_ids = _merge(run.best, run.best_ids, vals, cols + (run.shard.offset + i0), k)


def _tensor(a: np.ndarray) -> torch.Tensor:
    """torch.from_numpy, copying a read-only array (a memory-mapped stored bank) that torch must not share."""
    return torch.from_numpy(a if a.flags.writeable else np.array(a))


def search_torch(
    bank: PreparedBank, queries: QueryBatch, k: int, config: SearchConfig
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Exact masked kNN. Returns distances (Q, k) float32 (sorted, inf = none) and ids (Q, k) int64 (-1 = none)."""
    k_final, k = k, candidates_per_query(bank, k, config.rerank_margin)
    devices = resolve_devices(config)
    kind = "cuda" if devices[0].type == "cuda" else "cpu"
    query_block = config.query_block_rows or DEFAULT_BLOCKS[kind][0]
    bank_block = config.bank_block_rows or DEFAULT_BLOCKS[kind][1]
    if kind == "cuda" and torch.get_float32_matmul_precision() != "highest":
        LOG.warning(
            "float32 matmul precision is %r: near neighbours may be reordered", torch.get_float32_matmul_precision()
        )
    eps_sq = float(bank.degenerate_eps**2)

    # One contiguous shard of the bank per device; the tables move to the device once per call.
    bounds = np.linspace(0, bank.num_rows, len(devices) + 1).astype(int)
    shards = [
        _Shard(int(lo), _tensor(bank.coords[lo:hi]).to(dev), _tensor(bank.sqnorm[lo:hi]).to(dev))
        for lo, hi, dev in zip(bounds[:-1], bounds[1:], devices)
        if hi > lo
    ]
    order = np.argsort(queries.group, kind="stable")  # queries of one mask become contiguous
    qbar_sorted = queries.qbar[order]
    group_sorted = queries.group[order]
    ids_sorted = np.empty((queries.num_queries, k), dtype=np.int64)
    if config.torch_kernel == "triton":
        ids_sorted = _search_fused(shards, qbar_sorted, group_sorted, queries.unique_masks, k, eps_sq)
    else:
        _search_blocked(shards, qbar_sorted, group_sorted, queries.unique_masks, ids_sorted, k, eps_sq, query_block, bank_block)
    ids = np.empty_like(ids_sorted)
    ids[order] = ids_sorted
    return finalize(bank, queries.qbar, queries.masks, ids, k_final)


def _search_fused(
    shards: list[_Shard], qbar_sorted: np.ndarray, group_sorted: np.ndarray, unique_masks: np.ndarray, k: int, eps_sq: float
) -> np.ndarray:
    """(Q, k) candidate bank rows of the mask-sorted queries, shard by shard with the fused kernel."""
    from .triton_kernel import fused_masked_topk

    scores = np.full((len(qbar_sorted), k), -np.inf, dtype=np.float32)
    ids = np.full((len(qbar_sorted), k), -1, dtype=np.int64)
    with torch.inference_mode():
        for shard in shards:
            qbar = torch.from_numpy(qbar_sorted).to(shard.coords.device)
            s, i = fused_masked_topk(qbar, group_sorted, unique_masks, shard.coords, shard.sqnorm, min(k, len(shard.coords)), eps_sq)
            i = i.cpu().numpy()
            scores, ids = merge_topk(scores, ids, s.cpu().numpy(), np.where(i >= 0, i + shard.offset, -1), k)
    return ids


def _search_blocked(
    shards: list[_Shard],
    qbar_sorted: np.ndarray,
    group_sorted: np.ndarray,
    unique_masks: np.ndarray,
    ids_sorted: np.ndarray,
    k: int,
    eps_sq: float,
    query_block: int,
    bank_block: int,
) -> None:
    """Fill `ids_sorted` (Q, k) with the candidates of the mask-sorted queries: matmul tiles, all shards."""
    longest = max(len(s.coords) for s in shards)
    with torch.inference_mode():
        for q0 in range(0, len(qbar_sorted), query_block):
            sl = slice(q0, q0 + query_block)
            groups, local = np.unique(group_sorted[sl], return_inverse=True)
            masks = unique_masks[groups]
            runs = [_start_run(shard, qbar_sorted[sl], local.reshape(-1), masks, k) for shard in shards]
            # Block-major over devices: each step enqueues work on every device, with no host sync.
            for i0 in range(0, longest, bank_block):
                for run in runs:
                    if i0 < len(run.shard.coords):
                        _step(run, i0, bank_block, k, eps_sq)
            scores, ids = runs[0].best.cpu().numpy(), runs[0].best_ids.cpu().numpy()
            for run in runs[1:]:
                scores, ids = merge_topk(scores, ids, run.best.cpu().numpy(), run.best_ids.cpu().numpy(), k)
            ids_sorted[sl] = np.where(np.isneginf(scores), -1, ids)
