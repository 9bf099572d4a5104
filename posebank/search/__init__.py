"""Exact (and approximate) masked nearest-neighbour search of 2D poses: paper eq. 9.

A query 2D pose q (J, 2) comes with a mask S (J,) of annotated joints. Query and bank pose b are
both centred on the mean of the joints in S and scaled to unit L2 norm over S:

    n_S(x) = (x_S - mean_S(x)) / ||x_S - mean_S(x)||,      d(q, b) = ||n_S(q) - n_S(b)||.

Both are unit vectors, so d^2 = 2 - 2 cos: a masked maximum-cosine search whose bank-side
normalisation depends on the query's mask (prepared.py shows how to get it without a normalised
copy of the bank per mask). d lies in [0, 2] and is invariant to translating and scaling q or b.

Degenerate bank rows: a bank pose whose spread over S is at most `degenerate_eps` times its spread
over all joints (e.g. the masked joints coincide) has no defined shape on S. It never matches: its
distance is +inf, and when fewer than k valid rows exist the remaining slots are (inf, -1).

Engines (SearchConfig.engine), all exact except faiss-ivf, all equal to "numpy" up to ties:
- "numpy": the reference, literal normalisation in float64, blocked (reference.py). Slow.
- "blas": cache-sized GEMM tiles with the per-mask normaliser from a norm table, and a cheap
  running top-k, on numpy's BLAS (blas_engine.py); the fastest CPU engine measured here.
- "torch": the same maths with torch.matmul + topk; CUDA when available, bank split across GPUs.
- "faiss": faiss.knn on a rescaled copy of each bank block per mask group (faiss GPU when present).
- "faiss-ivf": approximate; k-means cells of full-body-normalised poses, cells chosen per query by
  masked distance to their centroids, exact masked scoring inside them (approximate.py). Build the
  index once with approximate.build_ivf_index when searching one bank repeatedly; annotate stores it
  beside the bank, keyed by the bank's content and the index parameters (ivf_store.py), and reuses it.
- "auto": torch when a CUDA GPU is present, else "blas" (BENCHMARKS.md, bench/bench_search.py).

Exactness and ties: the fast engines rank by float32 cosines, then recompute the distances of the
best k + rerank_margin rows in float64 and keep the best k. Returned distances are therefore exact
(to ~1e-7), and the ids are the reference's except among rows whose squared distances differ by
less than the float32 resolution of the cosine (~1e-6; e.g. with 2-joint masks many bank rows sit at
d ~ 1e-4 of a query), which come in any order.

Importing this package imports neither torch nor faiss; the engines that need them import them when
called.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from .config import ENGINES, SearchConfig
from .inputs import QueryBatch, prepare_queries
from .prepared import PreparedBank, prepare_bank

__all__ = [
    "ENGINES", "EXACT_ENGINES", "PreparedBank", "QueryBatch", "SearchConfig", "masked_knn", "prepare_bank",
    "prepare_queries", "resolve_engine", "search_prepared",
]  # fmt: skip

# Engines whose results equal the numpy reference (ties aside); "faiss-ivf" is approximate.
EXACT_ENGINES: tuple[str, ...] = ("numpy", "blas", "torch", "faiss")

LOG = logging.getLogger(__name__)

EngineFn = Callable[[PreparedBank, QueryBatch, int, SearchConfig], tuple[np.ndarray, np.ndarray]]


def cuda_present() -> bool:
    """True when torch sees a CUDA device (search engines and K-means pick the GPU by it). Skips importing torch when no NVIDIA driver is loaded."""
    if not os.path.exists("/proc/driver/nvidia/version"):
        return False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def resolve_engine(engine: str) -> str:
    """The concrete engine that `engine` means on this machine ("auto" -> "torch" or "blas")."""
    if engine not in ENGINES:
        raise ValueError(f"unknown search engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if engine != "auto":
        return engine
    # CPU choice: "blas" measured fastest of the exact CPU engines (BENCHMARKS.md, bench/bench_search.py).
    return "torch" if cuda_present() else "blas"


def _engine_function(engine: str) -> EngineFn:
    # Imported here, not at the top: torch and faiss load only when their engine is asked for.
    if engine == "numpy":
        from .reference import search_reference

        return search_reference
    if engine == "blas":
        from .blas_engine import search_blas

        return search_blas
    if engine == "torch":
        from .torch_engine import search_torch

        return search_torch
    if engine == "faiss":
        from .faiss_engine import search_faiss

        return search_faiss
    if engine == "faiss-ivf":
        from .approximate import search_ivf

        return search_ivf
    raise ValueError(f"unknown search engine {engine!r}")


def masked_knn(
    bank_2d: npt.ArrayLike | PreparedBank,
    queries_2d: npt.ArrayLike,
    masks: npt.ArrayLike,
    k: int = 1,
    *,
    engine: str | None = None,
    config: SearchConfig | None = None,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """The k bank poses nearest to each query under its mask (paper eq. 9).

    Args:
        bank_2d: (N, J, 2) or (N, 2J) float bank 2D poses (row-major joint, coord), or a PreparedBank
            (from prepare_bank: reuse it across calls to skip the O(N J) preparation).
        queries_2d: (Q, J, 2) or (Q, 2J) query 2D poses, any units (pixels); joints outside the mask
            are ignored and may be NaN.
        masks: (Q, J) bool, the joints of each query that count (at least 2).
        k: neighbours per query, 1 <= k <= N.
        engine: overrides config.engine when given (see the module docstring).
        config: SearchConfig; None means the defaults.

    Returns:
        distances: (Q, k) float32 in [0, 2], increasing along each row; inf for an empty slot.
        ids: (Q, k) int64 ROW indices into the bank (the caller maps them to pose_id/view_id);
            -1 for an empty slot.

    Raises:
        ValueError: bad shapes or dtypes, NaN/inf in the bank or in a masked query joint, a mask with
            fewer than 2 joints, a query whose masked joints coincide, k out of range, unknown engine.
    """
    config = config or SearchConfig()
    name = resolve_engine(engine if engine is not None else config.engine)
    if isinstance(bank_2d, PreparedBank):
        bank = bank_2d
        if bank.degenerate_eps != config.degenerate_eps:
            LOG.warning(
                "PreparedBank.degenerate_eps=%g differs from config.degenerate_eps=%g; using the bank's",
                bank.degenerate_eps, config.degenerate_eps,
            )  # fmt: skip
    else:
        bank = prepare_bank(bank_2d, degenerate_eps=config.degenerate_eps)
    if not isinstance(k, (int, np.integer)) or not 1 <= k <= bank.num_rows:
        raise ValueError(f"k must be an integer in [1, N={bank.num_rows}], got {k!r}")
    queries = prepare_queries(queries_2d, masks, bank.num_joints)
    if queries.num_queries == 0:
        return np.zeros((0, k), dtype=np.float32), np.zeros((0, k), dtype=np.int64)
    LOG.debug(
        "masked_knn: engine=%s N=%d Q=%d masks=%d k=%d",
        name, bank.num_rows, queries.num_queries, len(queries.unique_masks), k,
    )  # fmt: skip
    return _engine_function(name)(bank, queries, int(k), config)


def search_prepared(
    bank: PreparedBank, queries: QueryBatch, k: int, config: SearchConfig
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """masked_knn on a PreparedBank and queries already validated by prepare_queries: for a caller that
    searches many bank blocks with the same queries (posebank.annotate.matching), which then validates
    and normalises them once. k must be in [1, bank.num_rows]; same outputs as masked_knn."""
    if not 1 <= k <= bank.num_rows:
        raise ValueError(f"k must be an integer in [1, N={bank.num_rows}], got {k!r}")
    if queries.num_queries == 0:
        return np.zeros((0, k), dtype=np.float32), np.zeros((0, k), dtype=np.int64)
    return _engine_function(resolve_engine(config.engine))(bank, queries, int(k), config)
