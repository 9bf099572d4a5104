"""The faiss-ivf index stored with its bank: built once, reused by every later search of that bank.

An IvfMaskedIndex (approximate.py) depends only on the bank rows it covers and on its build
parameters (nlist, training sample, k-means iterations, seed, degenerate_eps), never on the queries
or their masks. So it is stored in a folder keyed by both, `ivf_index_key`
(posebank.stored_arrays: atomic folder rename, key, shapes, sizes and sha256 verified on reuse):

    <bank>/.index/ivf-<key>/meta.json         key, parameters, each array's shape, bytes and sha256
                              centroids.npy    (nlist, J, 2) float32 k-means centroids (full-body normalised)
                              tables.npy       (3J, N) float32 prepared.joint_tables, columns in cell order
                              row_ids.npy      (N,) int64 bank row of each column
                              cell_start.npy   (nlist + 1,) int64
                              coords.npy       (N, 2J) float32 PreparedBank.coords in bank order (the exact
                                               re-ranking reads candidates' rows from it)

An index that does not verify is rebuilt and replaced. The arrays are memory-mapped, read-only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..provenance import sha256_bytes
from ..stored_arrays import load_arrays, save_arrays
from .approximate import IvfMaskedIndex
from .config import SearchConfig
from .prepared import PreparedBank, prepare_bank

LOG = logging.getLogger(__name__)

INDEX_DIR = ".index"
_FORMAT = 3  # bump when the stored layout or the build changes meaning (3: sqnorm and invalid stored)
# sqnorm and invalid are derived from coords and tables, but stored: deriving them on every load cost
# 0.55 s at 1.2M rows, a fifth of a whole annotate run that reuses the index.
_ARRAYS = ("centroids", "tables", "row_ids", "cell_start", "coords", "sqnorm", "invalid")


def ivf_index_key(content_sha256: str, start: int, stop: int, config: SearchConfig) -> str:
    """The identity of the index of bank rows [start, stop): the bank's content (the sha256 of its
    manifest, which lists every shard's sha256), the rows, and every parameter the build reads."""
    params = ivf_build_params(config)
    return sha256_bytes(str(_FORMAT), content_sha256, str(start), str(stop), json.dumps(params, sort_keys=True))[:32]


def ivf_build_params(config: SearchConfig) -> dict[str, Any]:
    """The SearchConfig fields build_ivf_index reads (nprobe and threads are search-time settings)."""
    return {"ivf_nlist": config.ivf_nlist, "ivf_train_rows": config.ivf_train_rows, "ivf_niter": config.ivf_niter,
            "seed": config.seed, "degenerate_eps": config.degenerate_eps}  # fmt: skip


def save_ivf_index(index: IvfMaskedIndex, folder: Path, key: str, extra: dict[str, Any] | None = None) -> bool:
    """Store `index` in `folder` (stored_arrays.save_arrays). False: another process stored it first, or
    the folder cannot be written (the index then serves this run only)."""
    arrays = {
        "centroids": np.ascontiguousarray(index.centroids.coords.reshape(index.nlist, -1, 2)),
        "tables": index.tables,
        "row_ids": index.row_ids,
        "cell_start": index.cell_start,
        "coords": index.bank.coords,
        "sqnorm": index.bank.sqnorm,
        "invalid": index.invalid,
    }
    meta = {"format": _FORMAT, "params": ivf_build_params(index.config), "nlist": index.nlist,
            "rows": int(index.bank.num_rows), "joints": int(index.bank.num_joints),
            "build_seconds": index.build_seconds, **(extra or {})}  # fmt: skip
    return save_arrays(folder, key, arrays, meta)


def load_ivf_index(folder: Path, key: str, config: SearchConfig) -> IvfMaskedIndex | None:
    """The stored index of `key`, verified, or None (absent, or it does not verify: logged)."""
    loaded = load_arrays(folder, key, _ARRAYS)
    if loaded is None:
        return None
    arrays, meta = loaded
    j, n = int(meta["joints"]), int(meta["rows"])
    coords = arrays["coords"]
    eps = float(meta["params"]["degenerate_eps"])
    bank = PreparedBank(poses_2d=coords.reshape(n, j, 2), coords=coords, sqnorm=arrays["sqnorm"], degenerate_eps=eps)
    return IvfMaskedIndex(
        bank=bank,
        centroids=prepare_bank(np.asarray(arrays["centroids"]), degenerate_eps=eps),
        tables=arrays["tables"],
        invalid=arrays["invalid"],
        row_ids=np.asarray(arrays["row_ids"]),
        cell_start=np.asarray(arrays["cell_start"]),
        config=config,
        build_seconds=float(meta["build_seconds"]),
    )


def stored_ivf_index(
    index_root: Path, key: str, config: SearchConfig, build: Callable[[], PreparedBank], extra: dict[str, Any] | None = None
) -> tuple[IvfMaskedIndex, bool]:  # fmt: skip
    """The index of `key` from `index_root`, or built (from the PreparedBank that `build` returns),
    stored and returned. Returns (index, reused)."""
    from .approximate import build_ivf_index

    folder = index_root / f"ivf-{key}"
    index = load_ivf_index(folder, key, config)
    if index is not None:
        return index, True
    index = build_ivf_index(build(), config)
    if save_ivf_index(index, folder, key, extra):
        LOG.info("faiss-ivf: stored the index in %s", folder)
    return index, False
