"""Stored derived arrays: atomic writes, verification on reuse, and the stat cache that skips re-hashing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from posebank import stored_arrays
from posebank.stored_arrays import STAT, load_arrays, save_arrays


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the arrays hashed (sizes), through the module's own sha256_array."""
    calls: list[int] = []
    real = stored_arrays.sha256_array

    def counting(arr: np.ndarray) -> str:
        calls.append(arr.size)
        return real(arr)

    monkeypatch.setattr(stored_arrays, "sha256_array", counting)
    return calls


def _store(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    arrays = {"a": np.arange(1000, dtype=np.float32).reshape(100, 10), "b": np.arange(7, dtype=np.int64)}
    folder = tmp_path / "idx"
    assert save_arrays(folder, "k1", arrays, {"note": "x"})
    return folder, arrays


def test_reuse_trusts_unchanged_files_without_hashing(tmp_path: Path, hashes: list[int]) -> None:
    folder, arrays = _store(tmp_path)
    hashes.clear()
    loaded, meta = load_arrays(folder, "k1", ("a", "b"))
    assert hashes == []  # size and mtime as recorded when written: nothing hashed
    np.testing.assert_array_equal(loaded["a"], arrays["a"])
    assert meta["note"] == "x" and sorted(json.loads((folder / STAT).read_text())) == ["a", "b"]
    load_arrays(folder, "k1", ("a",), full=True)
    assert hashes == [1000]  # full=True always hashes
    assert load_arrays(folder, "other key", ("a",)) is None


def test_a_changed_file_is_hashed_and_refused(tmp_path: Path, hashes: list[int]) -> None:
    folder, _ = _store(tmp_path)
    path = folder / "a.npy"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # same size, new mtime
    path.write_bytes(bytes(data))
    hashes.clear()
    assert load_arrays(folder, "k1", ("a", "b")) is None
    assert hashes == [1000]


def test_a_copied_folder_is_hashed_once_then_trusted(tmp_path: Path, hashes: list[int]) -> None:
    folder, _ = _store(tmp_path)
    for name in ("a.npy", "b.npy"):  # as a copy without -p: new mtimes, same bytes
        os.utime(folder / name, ns=(1, 1))
    hashes.clear()
    assert load_arrays(folder, "k1", ("a", "b")) is not None
    assert sorted(hashes) == [7, 1000]
    assert load_arrays(folder, "k1", ("a", "b")) is not None
    assert sorted(hashes) == [7, 1000]  # verified whole last time: recorded, not hashed again


def test_damage_that_keeps_the_mtime_is_found_by_a_full_check(tmp_path: Path) -> None:
    folder, _ = _store(tmp_path)
    path = folder / "a.npy"
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert load_arrays(folder, "k1", ("a",)) is not None  # the documented limit of the stat cache
    assert load_arrays(folder, "k1", ("a",), full=True) is None


def test_readers_hash_a_listed_file_once_until_it_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from posebank import verify
    from posebank.errors import InputError
    from posebank.provenance import sha256_file

    shard = tmp_path / "part-00000.parquet"
    shard.write_bytes(b"rows" * 1000)
    entries = [{"file": shard.name, "bytes": shard.stat().st_size, "sha256": sha256_file(shard)}]
    hashed: list[Path] = []
    monkeypatch.setattr(verify, "sha256_file", lambda p: hashed.append(Path(p)) or sha256_file(p))
    verify.check_files(tmp_path, entries, sha256=True)
    verify.check_files(tmp_path, entries, sha256=True)
    assert hashed == [shard] and (tmp_path / verify.VERIFIED).is_file()
    shard.write_bytes(b"ROWS" * 1000)  # same size, new content and mtime
    with pytest.raises(InputError, match="sha256 differs"):
        verify.check_files(tmp_path, entries, sha256=True)
