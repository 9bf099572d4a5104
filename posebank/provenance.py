"""Provenance: file digests, the package version, the git revision, and atomic file writes."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def sha256_bytes(*parts: bytes | str) -> str:
    """Hex sha256 of the concatenation of `parts` (strings as UTF-8), each prefixed by its length."""
    h = hashlib.sha256()
    for p in parts:
        b = p.encode() if isinstance(p, str) else p
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


def package_version() -> str:
    """posebank's version: posebank.__version__, which the package metadata takes too (pyproject.toml).
    Not importlib.metadata: its import and lookup cost every command 15 ms."""
    from . import __version__

    return __version__


def git_revision() -> str:
    """The source tree's git commit, or "unknown" outside a checkout."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


TMP_SUFFIX = ".tmp"  # temporary files are ".<final name>.<random>.tmp" beside their final path


def is_temp_file(path: str | Path) -> bool:
    """True for a temporary file that `atomic_path` creates (left behind only by a killed process)."""
    name = Path(path).name
    return name.startswith(".") and name.endswith(TMP_SUFFIX) and name.count(".") >= 3


def current_umask() -> int:
    """The process umask, read without changing it (os.umask can only be read by setting it, which
    would briefly give other threads' new files the wrong mode)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


_UMASK_LOCK = threading.Lock()


@contextlib.contextmanager
def atomic_path(final: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `final`; rename it onto `final` only if the block succeeds.

    A crash or an error never leaves a half-written `final` behind, and never removes the old one.
    The file gets the mode the umask gives new files (0666 & ~umask). A process killed with SIGKILL
    leaves its temporary file; `posebank.jobs.OutputFolder` removes such files on the next run.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=TMP_SUFFIX, dir=final.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp creates the file 0600 whatever the umask; the result is an ordinary output file,
        # so it gets the mode open() would have given it (a bank on shared storage stays readable).
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, final)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write `data` as indented JSON to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
