"""Derived arrays stored beside an input (a bank's faiss-ivf index, its gather table): written once, verified on reuse.

A folder of .npy files plus meta.json (a key, the arrays' shapes, dtypes, bytes and sha256, and any
caller's fields). The key names what the arrays were derived from (e.g. the bank's content and the
parameters); a folder whose key, shapes, sizes or hashes differ is not used. Writes are atomic: the
files go into a hidden temporary folder renamed to its final name in one step, so a reader sees a
whole folder or none, and two processes deriving the same arrays at once both succeed (the first
rename wins). Loaded arrays are memory-mapped, read-only.

Reuse hashes only files changed since they last verified (posebank.stat_cache, in stat.json): stat.json
is a cache, not part of the folder's identity, so meta.json stays the same bytes for the same arrays.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from .provenance import current_umask
from .stat_cache import StatCache

LOG = logging.getLogger(__name__)

META = "meta.json"
STAT = "stat.json"  # posebank.stat_cache.StatCache of the folder's .npy files
_STALE_TEMP_SECONDS = 24 * 3600  # temporary folders older than this were left by a killed writer


def sha256_array(arr: np.ndarray) -> str:
    """sha256 of an array's bytes in C order, read 64 MB at a time (no copy of a memory-mapped array)."""
    h = hashlib.sha256()
    flat = np.ascontiguousarray(arr).reshape(-1).view(np.uint8)
    for i in range(0, flat.size, 1 << 26):
        h.update(flat[i : i + (1 << 26)])
    return h.hexdigest()


def save_arrays(folder: Path, key: str, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> bool:
    """Write `arrays` and meta.json (with `key`) to `folder` atomically. Returns False when another process
    stored it first (its copy is kept) or the parent folder cannot be written (logged)."""
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temp(folder.parent)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    except OSError as err:
        LOG.warning("cannot store %s (%s); kept in memory for this run only", folder, err)
        return False
    try:
        files = {}
        for name, arr in arrays.items():
            path = tmp / f"{name}.npy"
            np.save(path, arr)
            files[name] = {"bytes": path.stat().st_size, "shape": list(arr.shape), "dtype": str(arr.dtype),
                           "sha256": sha256_array(arr)}  # fmt: skip
        (tmp / META).write_text(json.dumps({**meta, "key": key, "files": files}, indent=1) + "\n", encoding="utf-8")
        seen = StatCache(tmp / STAT)
        for name, entry in files.items():
            seen.verified(name, tmp / f"{name}.npy", entry["sha256"])
        seen.save()
        for path in tmp.iterdir():
            os.chmod(path, 0o666 & ~current_umask())
        os.chmod(tmp, 0o777 & ~current_umask())
        if folder.exists():  # a copy that did not verify: set it aside, then replace it
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


def load_arrays(
    folder: Path, key: str, names: tuple[str, ...], *, full: bool = False
) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """The arrays `names` stored in `folder` under `key`, memory-mapped, and its meta.json; None when
    absent or when anything does not verify (key, shape, dtype, size, sha256; the reason is logged).

    full: hash every file; otherwise a file unchanged since it last verified (stat.json) is not hashed.
    """
    meta_path = folder / META
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("key") != key:
            LOG.warning("%s holds other arrays (key %s, expected %s); rebuilding", folder, meta.get("key"), key)
            return None
        seen = StatCache(folder / STAT)
        arrays = {}
        for name in names:
            entry, path = meta["files"][name], folder / f"{name}.npy"
            if path.stat().st_size != entry["bytes"]:
                raise ValueError(f"{path.name}: {path.stat().st_size} bytes, {entry['bytes']} recorded")
            arr = np.load(path, mmap_mode="r")
            if list(arr.shape) != entry["shape"] or str(arr.dtype) != entry["dtype"]:
                raise ValueError(f"{path.name}: {arr.shape} {arr.dtype}, {entry['shape']} {entry['dtype']} recorded")
            if full or not seen.trusted(name, path, entry["sha256"]):
                if sha256_array(arr) != entry["sha256"]:
                    raise ValueError(f"{path.name}: sha256 differs from the one recorded")
                seen.verified(name, path, entry["sha256"])
            arrays[name] = arr
    except (OSError, ValueError, KeyError, TypeError) as err:
        LOG.warning("the stored arrays %s do not verify (%s); rebuilding them", folder, err)
        return None
    seen.save()
    return arrays, meta


def _remove_stale_temp(root: Path) -> None:
    """Temporary folders of writers killed long ago (a live writer's folder is younger)."""
    now = time.time()
    for path in root.glob(".*.tmp"):
        try:
            if path.is_dir() and now - path.stat().st_mtime > _STALE_TEMP_SECONDS:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            pass
