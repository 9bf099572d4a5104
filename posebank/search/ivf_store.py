"""The faiss-ivf index stored with its bank: built once, reused by every later search of that bank.

An IvfMaskedIndex (approximate.py) depends only on the bank rows it covers and on its build
parameters (nlist, training sample, k-means iterations, seed, degenerate_eps), never on the queries
or their masks. So it is stored in a folder keyed by both, `ivf_index_key`:

    <bank>/.index/ivf-<key>/meta.json         key, parameters, shapes, each array's bytes and sha256
                              centroids.npy    (nlist, J, 2) float32 k-means centroids (full-body normalised)
                              tables.npy       (3J, N) float32 prepared.joint_tables, columns in cell order
                              row_ids.npy      (N,) int64 bank row of each column
                              cell_start.npy   (nlist + 1,) int64

Writes are atomic: the arrays go into a hidden temporary folder that is renamed to its final name
in one step, so a reader sees a whole index or none (two processes building the same index at once
both succeed; the first rename wins). Reuse is verified: the key, the shapes and every file's size and
sha256 must match meta.json (hashing runs at about 1 GB/s, 156 bytes per bank row at 13 joints); an
index that does not verify is rebuilt and replaced. The arrays are memory-mapped, read-only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..provenance import current_umask, sha256_bytes
from .approximate import IvfMaskedIndex
from .config import SearchConfig
from .prepared import PreparedBank, prepare_bank

LOG = logging.getLogger(__name__)

INDEX_DIR = ".index"
META = "meta.json"
_FORMAT = 1  # bump when the stored layout or the build changes meaning
_ARRAYS = ("centroids", "tables", "row_ids", "cell_start")
_STALE_TEMP_SECONDS = 24 * 3600  # temporary folders older than this were left by a killed build


def ivf_index_key(content_sha256: str, start: int, stop: int, config: SearchConfig) -> str:
    """The identity of the index of bank rows [start, stop): the bank's content (the sha256 of its
    manifest, which lists every shard's sha256), the rows, and every parameter the build reads."""
    params = ivf_build_params(config)
    return sha256_bytes(str(_FORMAT), content_sha256, str(start), str(stop), json.dumps(params, sort_keys=True))[:32]


def ivf_build_params(config: SearchConfig) -> dict[str, Any]:
    """The SearchConfig fields build_ivf_index reads (nprobe and threads are search-time settings)."""
    return {"ivf_nlist": config.ivf_nlist, "ivf_train_rows": config.ivf_train_rows, "ivf_niter": config.ivf_niter,
            "seed": config.seed, "degenerate_eps": config.degenerate_eps}  # fmt: skip


def _sha256_array(arr: np.ndarray) -> str:
    h = hashlib.sha256()
    flat = arr.reshape(-1).view(np.uint8)
    for i in range(0, flat.size, 1 << 26):  # 64 MB at a time: no copy of a memory-mapped array
        h.update(flat[i : i + (1 << 26)])
    return h.hexdigest()


def save_ivf_index(index: IvfMaskedIndex, folder: Path, key: str, extra: dict[str, Any] | None = None) -> bool:
    """Write `index` to `folder` atomically (see the module docstring). Returns False when another
    process stored it first (its copy is kept) or the parent folder cannot be written."""
    arrays = {
        "centroids": np.ascontiguousarray(index.centroids.coords.reshape(index.nlist, -1, 2)),
        "tables": index.tables,
        "row_ids": index.row_ids,
        "cell_start": index.cell_start,
    }
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    except OSError as err:
        LOG.warning("faiss-ivf: cannot store the index in %s (%s); it is kept in memory for this run only",
                    folder.parent, err)  # fmt: skip
        return False
    try:
        files = {}
        for name, arr in arrays.items():
            path = tmp / f"{name}.npy"
            np.save(path, arr)
            files[name] = {"bytes": path.stat().st_size, "shape": list(arr.shape), "dtype": str(arr.dtype),
                           "sha256": _sha256_array(np.ascontiguousarray(arr))}  # fmt: skip
        meta = {"format": _FORMAT, "key": key, "params": ivf_build_params(index.config), "nlist": index.nlist,
                "rows": int(index.bank.num_rows), "joints": int(index.bank.num_joints),
                "build_seconds": index.build_seconds, "files": files, **(extra or {})}  # fmt: skip
        (tmp / META).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        mode = 0o666 & ~current_umask()
        for path in tmp.iterdir():
            os.chmod(path, mode)
        os.chmod(tmp, 0o777 & ~current_umask())
        if folder.exists():  # a damaged copy (load_ivf_index refused it): set it aside, then replace
            trash = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old.", suffix=".tmp", dir=folder.parent))
            os.rename(folder, trash / "old")
            shutil.rmtree(trash, ignore_errors=True)
        try:
            os.rename(tmp, folder)  # atomic; fails when another process renamed its copy first
        except OSError:
            return False
        return True
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_ivf_index(folder: Path, key: str, config: SearchConfig) -> IvfMaskedIndex | None:
    """The stored index of `key`, verified (key, shapes, sizes, sha256), or None when it is absent or
    does not verify (the reason is logged). The arrays are memory-mapped read-only."""
    meta_path = folder / META
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("format") != _FORMAT or meta.get("key") != key:
            LOG.warning("faiss-ivf: %s holds another index (key %s, format %s); rebuilding", folder,
                        meta.get("key"), meta.get("format"))  # fmt: skip
            return None
        arrays = {}
        for name in _ARRAYS:
            entry, path = meta["files"][name], folder / f"{name}.npy"
            if path.stat().st_size != entry["bytes"]:
                raise ValueError(f"{path.name}: {path.stat().st_size} bytes, {entry['bytes']} recorded")
            arr = np.load(path, mmap_mode="r")
            if list(arr.shape) != entry["shape"] or str(arr.dtype) != entry["dtype"]:
                raise ValueError(f"{path.name}: shape {arr.shape} {arr.dtype}, {entry['shape']} {entry['dtype']} recorded")
            if _sha256_array(arr) != entry["sha256"]:
                raise ValueError(f"{path.name}: sha256 differs from the one recorded")
            arrays[name] = arr
    except (OSError, ValueError, KeyError, TypeError) as err:
        LOG.warning("faiss-ivf: the stored index %s does not verify (%s); rebuilding it", folder, err)
        return None
    return _index_from_arrays(arrays, meta, config)


def _index_from_arrays(arrays: dict[str, np.ndarray], meta: dict[str, Any], config: SearchConfig) -> IvfMaskedIndex:
    """Rebuild the in-memory index: the bank's prepared coordinates come back from the sorted tables
    (rows J..3J-1 hold x and y of each joint), so they are not stored twice."""
    tables, row_ids = arrays["tables"], np.asarray(arrays["row_ids"])
    j, n = int(meta["joints"]), int(meta["rows"])
    coords = np.empty((n, j, 2), dtype=np.float32)
    coords[row_ids, :, 0] = tables[j : 2 * j].T
    coords[row_ids, :, 1] = tables[2 * j : 3 * j].T
    sqnorm = np.empty((n, j), dtype=np.float32)
    sqnorm[row_ids] = tables[:j].T
    eps = float(meta["params"]["degenerate_eps"])
    bank = PreparedBank(poses_2d=coords, coords=coords.reshape(n, 2 * j), sqnorm=sqnorm, degenerate_eps=eps)
    return IvfMaskedIndex(
        bank=bank,
        centroids=prepare_bank(np.asarray(arrays["centroids"]), degenerate_eps=eps),
        tables=tables,
        invalid=np.asarray(tables[:j].sum(axis=0) <= 0.5),
        row_ids=row_ids,
        cell_start=np.asarray(arrays["cell_start"]),
        config=config,
        build_seconds=float(meta["build_seconds"]),
    )


def _remove_stale_temp(root: Path) -> None:
    """Temporary folders of builds killed long ago (a live build's folder is younger)."""
    now = time.time()
    for path in root.glob(".ivf-*.tmp"):
        try:
            if now - path.stat().st_mtime > _STALE_TEMP_SECONDS:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            pass


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
    if index_root.is_dir():
        _remove_stale_temp(index_root)
    index = build_ivf_index(build(), config)
    if save_ivf_index(index, folder, key, extra):
        LOG.info("faiss-ivf: stored the index in %s", folder)
    return index, False
