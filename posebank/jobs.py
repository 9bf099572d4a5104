"""The output-folder contract of every command that writes an --out (docs/design.md "Output folders").

build-bank, anchors, annotate, synth, audit, train and evaluate open their --out through `OutputFolder`, so
that the rules below hold the same way everywhere:

- Identity: every setting that changes the output (engine and label mode included) and the sha256
  of every input, kept in <out>/.job.json. A rerun with the same identity resumes; a different one
  is refused, naming the settings that differ and their two values, unless `overwrite` (then the
  job's earlier outputs are removed first).
- Resume verifies content: each output file is written atomically and recorded in the journal
  (.job.json "files": sha256 and bytes). A file is reused only while its bytes still have the
  recorded sha256; a damaged, truncated or unrecorded file is rebuilt, never trusted.
- Temporary files left by a killed run (".<name>.<random>.tmp") are removed when the folder is
  opened. SIGTERM stops a run the way SIGINT does: an exception unwinds the writes, so no temporary
  file stays and the next run resumes.
- One process at a time: an advisory lock (flock) on the folder while the job runs.
- A failed run that wrote no output leaves nothing behind: no journal, and no folder it created.
- Files honour the umask (posebank.provenance.atomic_path).

What this module must not do: know any command's file layout beyond the relative paths it is given.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from .errors import OutputConflictError
from .provenance import atomic_path, is_temp_file, sha256_bytes, sha256_file, write_json_atomic

LOG = logging.getLogger(__name__)
JOB_FILE = ".job.json"
MANIFEST = "manifest.json"
JOURNAL_VERSION = 1
_MAX_LISTED = 6  # differences named in a refusal


class JobInterrupted(KeyboardInterrupt):
    """Raised in the main thread when SIGTERM arrives during a job (handled like Ctrl-C)."""


@dataclass(frozen=True)
class JobSpec:
    """What a job is: the identity of its output, and the paths it owns in its folder.

    Attributes:
        kind: "bank" | "anchors" | "annotations" | "synth" | "audit" | "train" | "evaluate".
        settings: every setting that changes the output (JSON-able; nested dicts allowed). Settings
            that do not (the output folder, worker counts) stay out, so moving or parallelising a
            job does not refuse its own output.
        inputs: input name (a path or a role such as "bank manifest.json") -> its sha256.
        outputs: files and folders (relative to the output folder) the job writes besides
            manifest.json; they are removed when another job's output is overwritten.
        exclusive: the folder must hold nothing but this job's output (audit: file names vary).
    """

    kind: str
    settings: dict[str, Any]
    inputs: dict[str, str] = field(default_factory=dict)
    outputs: tuple[str, ...] = ()
    exclusive: bool = False

    @property
    def identity(self) -> str:
        """Hex sha256 of kind, settings and inputs (canonical JSON, key order ignored)."""
        return sha256_bytes(self.kind, _canonical(self.settings), _canonical(self.inputs))


def _canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: data}


def _short(value: Any) -> str:
    text = json.dumps(value) if value is not _MISSING else "(not set)"
    return text if len(text) <= 70 else text[:67] + "..."


_MISSING = object()


def describe_differences(previous: dict[str, Any], spec: JobSpec) -> list[str]:
    """The settings and inputs that differ between a journal (.job.json) and `spec`, in words:
    ["engine: \"blas\" (in the folder) vs \"faiss-ivf\" (this run)", ...]."""
    lines = []
    if previous.get("kind") not in (None, spec.kind):
        lines.append(f"kind: {previous.get('kind')!r} (in the folder) vs {spec.kind!r} (this run)")
    if "settings" not in previous:
        return lines + ["settings: not recorded (written by an older posebank)"]
    old, new = _flatten(previous.get("settings", {})), _flatten(spec.settings)
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, _MISSING), new.get(key, _MISSING)
        if a != b:
            lines.append(f"{key}: {_short(a)} (in the folder) vs {_short(b)} (this run)")
    old_in, new_in = previous.get("inputs", {}), spec.inputs
    for name in sorted(set(old_in) | set(new_in)):
        a, b = old_in.get(name), new_in.get(name)
        if a != b:
            what = "not an input" if a is None else f"sha256 {a[:12]}"
            now = "not an input" if b is None else f"sha256 {b[:12]}"
            lines.append(f"input {name}: {what} (in the folder) vs {now} (this run)")
    return lines


def remove_temp_files(root: str | Path) -> list[Path]:
    """Delete the temporary files a killed writer left below `root` (see provenance.atomic_path)."""
    removed = []
    for folder, _, files in os.walk(root):
        for name in files:
            if is_temp_file(name):
                path = Path(folder) / name
                path.unlink(missing_ok=True)
                removed.append(path)
    if removed:
        LOG.info("removed %d temporary file(s) left by an interrupted run in %s", len(removed), root)
    return removed


def _inside(root: Path, rel: str) -> bool:
    """A journal path that stays inside the folder (the journal is a file users can edit)."""
    p = Path(rel)
    return not p.is_absolute() and ".." not in p.parts and rel not in ("", ".")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


class OutputFolder:
    """A job's --out folder, opened for the duration of the job (a context manager).

    >>> with OutputFolder(out, JobSpec("bank", settings, inputs, outputs=("shards",))) as job:
    ...     if not job.reusable("shards/cmu-00000.parquet"):
    ...         job.write("shards/cmu-00000.parquet", lambda tmp: write_parquet(table, tmp))
    ...     job.finish(manifest)

    Attributes:
        out: the folder.
        spec: the job.
        resumed: True when the folder held this same job (its files may be reused).
        files: the journal: relative path -> {"sha256", "bytes"} of every output file recorded.
        damaged: relative paths that were on disk with other bytes than recorded (rebuilt).
        removed_temp: temporary files removed when the folder was opened.
    """

    def __init__(self, out: str | Path, spec: JobSpec, *, overwrite: bool = False) -> None:
        self.out = Path(out)
        self.spec = spec
        self.overwrite = overwrite
        self.resumed = False
        self.files: dict[str, dict[str, Any]] = {}
        self.damaged: list[str] = []
        self.removed_temp: list[Path] = []
        self._created = False
        self._lock_fd: int | None = None
        self._previous_handler: Any = None
        self._handler_installed = False
        self._journal_written = False

    # --- opening and closing -----------------------------------------------------------------

    def __enter__(self) -> OutputFolder:
        self._created = not self.out.exists()
        self.out.mkdir(parents=True, exist_ok=True)
        self._lock()
        try:
            self.removed_temp = remove_temp_files(self.out)
            self._check_identity()
            self._write_journal()
            self._catch_sigterm()
        except BaseException:
            self._release(failed=True)
            raise
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self._release(failed=exc_type is not None)

    def _release(self, *, failed: bool) -> None:
        self._restore_sigterm()
        try:
            if failed and self._journal_written and not self._holds_output():
                # Nothing of this job is on disk: leave no journal (and no folder this run made),
                # so the folder does not claim to hold a job that never produced anything.
                if self._created:
                    shutil.rmtree(self.out, ignore_errors=True)
                else:
                    (self.out / JOB_FILE).unlink(missing_ok=True)
        finally:
            self._unlock()

    def _lock(self) -> None:
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock, the rest of the contract still holds
            return
        fd = os.open(self.out, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise OutputConflictError(
                f"{self.out} is being written by another posebank process; wait for it, or use another --out"
            ) from None
        self._lock_fd = fd

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    def _catch_sigterm(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread may set handlers; a job run from a thread keeps the default

        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            raise JobInterrupted(f"stopped by SIGTERM; rerun the same command to resume {self.out}")

        self._previous_handler = signal.signal(signal.SIGTERM, on_sigterm)
        self._handler_installed = True

    def _restore_sigterm(self) -> None:
        if self._handler_installed:
            signal.signal(signal.SIGTERM, self._previous_handler)
            self._handler_installed = False

    # --- identity ------------------------------------------------------------------------------

    def _read_journal(self) -> dict[str, Any] | None:
        path = self.out / JOB_FILE
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # unreadable: a job we cannot recognise
        return data if isinstance(data, dict) else {}

    def _holds_output(self) -> bool:
        if self.files:
            return True
        if (self.out / MANIFEST).exists():
            return True
        for rel in self.spec.outputs:
            p = self.out / rel
            if p.is_file() or (p.is_dir() and any(f.is_file() for f in p.rglob("*"))):
                return True
        if self.spec.exclusive and self.out.is_dir():
            return any(p.name != JOB_FILE for p in self.out.iterdir())
        return False

    def _check_identity(self) -> None:
        previous = self._read_journal()
        identity = self.spec.identity
        if previous is not None and previous.get("identity") == identity:
            files = previous.get("files", {})
            self.files = {k: v for k, v in files.items() if _inside(self.out, k)} if isinstance(files, dict) else {}
            self.resumed = True
            return
        if previous is not None:
            if not self.overwrite:
                differences = describe_differences(previous, self.spec)
                shown = "; ".join(differences[:_MAX_LISTED]) or "unknown differences"
                more = f" (and {len(differences) - _MAX_LISTED} more)" if len(differences) > _MAX_LISTED else ""
                raise OutputConflictError(
                    f"{self.out} holds the output of another {previous.get('kind', self.spec.kind)} job: {shown}{more}; "
                    "use another --out, or --overwrite to replace it"
                )
            self._clear(previous)
        elif self._holds_output():
            if not self.overwrite:
                raise OutputConflictError(
                    f"{self.out} holds output of an unknown job (no {JOB_FILE}); use another --out, or --overwrite "
                    "to replace it"
                )
            self._clear({})
        self.files = {}

    def _clear(self, previous: dict[str, Any]) -> None:
        """Remove another job's outputs: its recorded files, the spec's outputs and the manifest."""
        recorded = previous.get("files", {}) if isinstance(previous.get("files"), dict) else {}
        for rel in [*recorded, *self.spec.outputs, MANIFEST]:
            if _inside(self.out, rel):
                _remove(self.out / rel)

    def _write_journal(self) -> None:
        self._journal_written = True
        write_json_atomic(self.out / JOB_FILE, {
            "journal_version": JOURNAL_VERSION, "kind": self.spec.kind, "identity": self.spec.identity,
            "settings": self.spec.settings, "inputs": self.spec.inputs, "files": self.files,
        })  # fmt: skip

    # --- files -----------------------------------------------------------------------------------

    def path(self, rel: str) -> Path:
        """The absolute path of an output file given relative to the folder."""
        return self.out / rel

    def reusable(self, rel: str) -> bool:
        """True when `rel` exists and its bytes have the sha256 recorded when it was written.

        A file that exists with other bytes (damaged, truncated, or written by a run that died
        before recording it) is reported in `damaged` and must be rebuilt by the caller.
        """
        path = self.out / rel
        if not path.is_file():
            return False
        recorded = self.files.get(rel)
        if not recorded or "sha256" not in recorded:
            return False
        if path.stat().st_size != recorded.get("bytes", path.stat().st_size) or sha256_file(path) != recorded["sha256"]:
            LOG.warning("%s does not match the sha256 recorded when it was written: rebuilding it", path)
            self.damaged.append(rel)
            self.files.pop(rel, None)
            return False
        return True

    def write(self, rel: str, writer: Callable[[Path], None]) -> dict[str, Any]:
        """Write one output file atomically with `writer(tmp_path)`, then record it in the journal.

        Returns:
            {"sha256", "bytes"} of the file written.
        """
        with atomic_path(self.out / rel) as tmp:
            writer(tmp)
        return self.record(rel)

    def record(self, rel: str) -> dict[str, Any]:
        """Record the sha256 and size of an output file written by other means (worker processes,
        libraries that write their own files). Returns {"sha256", "bytes"}."""
        self.record_many([rel], save=True)
        return self.files[rel]

    def record_many(self, rels: Iterable[str], *, save: bool = True) -> None:
        """Record several files at once (one journal write)."""
        for rel in rels:
            path = self.out / rel
            self.files[rel] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
        if save:
            self._write_journal()

    def entry(self, rel: str) -> dict[str, Any]:
        """The recorded {"sha256", "bytes"} of an output file (written or verified in this run)."""
        return self.files[rel]

    def forget(self, rels: Iterable[str]) -> None:
        """Delete output files that are no longer part of the output, and drop them from the journal."""
        rels = list(rels)
        for rel in rels:
            if _inside(self.out, rel):
                _remove(self.out / rel)
            self.files.pop(rel, None)
        if rels:
            self._write_journal()

    def clear(self) -> None:
        """Remove every output of this job (for jobs that always recompute everything: audit)."""
        self._clear({"files": self.files})
        self.files = {}
        self._write_journal()

    def finish(self, manifest: dict[str, Any]) -> None:
        """Write manifest.json (atomically), the last file of a successful run."""
        write_json_atomic(self.out / MANIFEST, manifest)
