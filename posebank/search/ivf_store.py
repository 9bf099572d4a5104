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
                              invalid.npy      (N,) bool, rows in cell order whose joints all coincide

The prepared rows themselves (PreparedBank.coords and .sqnorm, which the exact re-ranking reads) are not
stored here: the caller hands them in, from the prepared bank that posebank.annotate.matching stores once
for every engine (<bank>/.index/prepared-<key>).

An index that does not verify is rebuilt and replaced. The arrays are memory-mapped, read-only.
"""

from __future__ import annotations

import json
import logging
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
# bump when the stored layout or the build changes meaning (3: invalid stored; 4: the prepared rows not stored)
_FORMAT = 4
# invalid is derived from the tables, but stored: deriving it and the norms on every load cost 0.55 s at
# 1.2M rows, a fifth of a whole annotate run that reuses the index.
_ARRAYS = ("centroids", "tables", "row_ids", "cell_start", "invalid")


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
        "invalid": index.invalid,
    }
    meta = {"format": _FORMAT, "params": ivf_build_params(index.config), "nlist": index.nlist,
            "rows": int(index.bank.num_rows), "joints": int(index.bank.num_joints),
            "build_seconds": index.build_seconds, **(extra or {})}  # fmt: skip
    return save_arrays(folder, key, arrays, meta)


def load_ivf_index(folder: Path, key: str, config: SearchConfig, bank: PreparedBank) -> IvfMaskedIndex | None:
    """The stored index of `key` over the prepared rows `bank`, verified, or None (absent, or it does
    not verify: logged)."""
    loaded = load_arrays(folder, key, _ARRAYS)
    if loaded is None:
        return None
    arrays, meta = loaded
    if (int(meta["rows"]), int(meta["joints"])) != (bank.num_rows, bank.num_joints):
        LOG.warning("faiss-ivf: the index in %s covers %s rows x %s joints, not %d x %d: rebuilt", folder,
                    meta["rows"], meta["joints"], bank.num_rows, bank.num_joints)  # fmt: skip
        return None
    eps = float(meta["params"]["degenerate_eps"])
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
    index_root: Path, key: str, config: SearchConfig, bank: PreparedBank, extra: dict[str, Any] | None = None
) -> tuple[IvfMaskedIndex, bool]:  # fmt: skip
    """The index of `key` over the prepared rows `bank`, from `index_root`, or built, stored and
    returned. Returns (index, reused)."""
    from .approximate import build_ivf_index

    folder = index_root / f"ivf-{key}"
    index = load_ivf_index(folder, key, config, bank)
    if index is not None:
        return index, True
    index = build_ivf_index(bank, config)
    if save_ivf_index(index, folder, key, extra):
        LOG.info("faiss-ivf: stored the index in %s", folder)
    return index, False
