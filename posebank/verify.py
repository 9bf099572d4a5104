"""Checks that readers make on posebank outputs, and `posebank verify PATH`, which makes all of them.

Readers of a bank, an anchor table or annotation shards never trust them blindly:
- `check_files`: each file the manifest lists is there with its size, and its sha256 when the
  files read total at most CHEAP_SHA256_BYTES (hashing runs at about 1 GB/s, well under the cost
  of what readers then do with the rows); a larger set is hashed by `posebank verify`.
- `check_values`: pose values are finite and of a plausible magnitude, checked on every batch read,
  so damage that the manifest cannot show (a file hashed only by size) is still caught.
Both raise InputError naming the bad file (and row), which the CLI prints as one line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .errors import InputError
from .jobs import JOB_FILE, MANIFEST
from .provenance import is_temp_file, sha256_bytes, sha256_file
from .stat_cache import StatCache

# Files that hashed right and have not changed since (size, mtime) are not hashed again by readers
# (posebank.stat_cache); `posebank verify` always hashes.
VERIFIED = ".verified.json"
CHEAP_SHA256_BYTES = 1 << 30  # readers hash the listed files they read when these total at most 1 GiB
# Largest plausible magnitude of stored values: poses in metres are body-centred (a person is ~2 m),
# pixels are image coordinates. Bytes damaged inside a page decode to values such as 3e36.
BOUND_M = 1e3
BOUND_PX = 1e7
# Outputs whose journal (.job.json) is their only record of files: no manifest.json (a training run
# is never "finished": it may be resumed with more iterations).
JOURNAL_ONLY_KINDS = ("audit", "train", "evaluate")
_REBUILD = "rerun the command that wrote it (damaged files are rebuilt), or `posebank verify` the folder"


def manifest_files(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The file entries of a manifest: {"file" (relative), "sha256", optionally "bytes", "rows"}."""
    entries = manifest.get("shards", manifest.get("files", []))
    return [e for e in entries if isinstance(e, dict) and "file" in e]


def check_files(root: str | Path, entries: Sequence[dict[str, Any]], *, sha256: bool | None = None) -> None:
    """Check files against their manifest entries: present, size (when recorded), sha256.

    Args:
        root: the folder the entries' "file" paths are relative to.
        entries: manifest entries (`manifest_files`).
        sha256: hash every file (True), none (False), or only when they total at most
            CHEAP_SHA256_BYTES (None). A file that hashed right before and has not changed since
            (size and mtime, recorded in <root>/.verified.json) is not hashed again.

    Raises:
        InputError: naming the first missing or damaged file.
    """
    root = Path(root)
    sizes = []
    for e in entries:
        path = root / e["file"]
        if not path.is_file():
            raise InputError(path, f"listed in {MANIFEST} but missing; {_REBUILD}")
        size = path.stat().st_size
        if "bytes" in e and size != e["bytes"]:
            raise InputError(path, f"damaged: {size} bytes where {MANIFEST} records {e['bytes']}; {_REBUILD}")
        sizes.append(size)
    if sha256 is None:
        sha256 = sum(sizes) <= CHEAP_SHA256_BYTES
    if sha256:
        seen = StatCache(root / VERIFIED)
        for e in entries:
            path = root / e["file"]
            if "sha256" not in e or seen.trusted(e["file"], path, e["sha256"]):
                continue
            if sha256_file(path) != e["sha256"]:
                raise InputError(path, f"damaged: its sha256 differs from {MANIFEST}; {_REBUILD}")
            seen.verified(e["file"], path, e["sha256"])
        seen.save()


def find_manifest(path: str | Path) -> Path | None:
    """The manifest.json of the output that holds folder `path`: in it or in the folder above
    (the folder of annotations/part-00000.parquet -> manifest.json beside annotations/)."""
    path = Path(path).resolve()
    for candidate in [path, *path.parents][:2]:
        if candidate.is_dir() and (candidate / MANIFEST).is_file():
            return candidate / MANIFEST
    return None


def input_sha256(path: str | Path) -> tuple[str, str]:
    """What identifies the content of an input of a job, for its JobSpec.inputs: (what, sha256).

    A path inside a posebank output is identified by that output's manifest.json (it records the
    sha256 of every file), so hashing it is cheap and covers every shard; `what` names the path
    relative to the manifest's folder, since two files of one output are different inputs. A path
    outside any output (tables assembled by hand) is hashed itself: a file, or a folder's files in
    sorted order.

    Returns:
        ("<relative path> in manifest.json" | "file" | "folder", hex sha256).

    Raises:
        InputError: `path` does not exist.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(p, "no such file or folder")
    manifest = find_manifest(p if p.is_dir() else p.parent)
    if manifest is not None:
        rel = os.path.relpath(p.resolve(), manifest.parent)
        return f"{rel} in {MANIFEST}", sha256_file(manifest)
    if p.is_file():
        return "file", sha256_file(p)
    files = sorted(f for f in p.rglob("*") if f.is_file() and not is_temp_file(f.name))
    return "folder", sha256_bytes(*(f"{f.relative_to(p)}:{sha256_file(f)}" for f in files))


def check_output_files(files: Sequence[str | Path], *, sha256: bool | None = None) -> None:
    """Check Parquet files about to be read against the manifest of the output that holds them.

    Files with no manifest above them (tables assembled by hand) are not checked here; their values
    still are, as they are read.

    Raises:
        InputError: naming a damaged or missing file, or a file in an output folder that its manifest
            does not list (left by another run, or copied in by hand).
    """
    by_manifest: dict[Path, list[Path]] = {}
    for f in map(Path, files):
        manifest = find_manifest(f.parent)
        if manifest is not None:
            by_manifest.setdefault(manifest, []).append(f.resolve())
    for manifest_path, paths in by_manifest.items():
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except ValueError as err:
            raise InputError(manifest_path, f"not valid JSON ({err})") from None
        root = manifest_path.parent
        entries = {(root / e["file"]).resolve(): e for e in manifest_files(manifest)}
        for p in paths:
            if p not in entries:
                raise InputError(p, f"not listed in {manifest_path}: not part of that output (left by another run?)")
        check_files(root, [{**entries[p], "file": str(p)} for p in paths], sha256=sha256)


def check_values(
    path: str | Path, column: str, values: npt.NDArray[np.floating], bound: float, *,
    rows: npt.NDArray[np.bool_] | None = None, first_row: int = 0,
) -> None:  # fmt: skip
    """Raise InputError when `values` (N, ...) hold a non-finite value or one beyond ±bound.

    Args:
        path: the file the values come from (named in the error).
        column: the column's name.
        values: (N, ...) the column as an array.
        bound: the largest plausible magnitude (BOUND_M or BOUND_PX).
        rows: (N,) or values.shape[:k] bool, where values must be checked (None: everywhere).
        first_row: the file row of values[0] (to name the bad row).
    """
    v = np.asarray(values)
    ok = np.isfinite(v) & (np.abs(v) <= bound)
    if rows is not None:
        mask = np.asarray(rows, dtype=bool)
        mask = mask.reshape(mask.shape + (1,) * (v.ndim - mask.ndim))
        ok |= ~mask
    if ok.all():
        return
    bad = np.argwhere(~ok)[0]
    value = v[tuple(bad)]
    raise InputError(path, f"column {column!r} holds {float(value):g} (non-finite or beyond ±{bound:g}); the file is "
                     f"damaged: {_REBUILD}", record=f"row {first_row + int(bad[0])}")  # fmt: skip


def _fixed(column: Any, width: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """A (nullable) fixed-size-list column -> (N, width) values (NaN on null rows) and (N,) validity."""
    import pyarrow as pa

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    valid = column.is_valid().to_numpy(zero_copy_only=False).astype(bool)
    out = np.full((len(column), width), np.nan, dtype=np.float32)
    if valid.any():
        out[valid] = column.filter(column.is_valid()).flatten().to_numpy(zero_copy_only=False).reshape(-1, width)
    return out, valid


def check_table_values(table: Any, path: str | Path, *, first_row: int = 0) -> None:
    """Check the pose columns a table (or record batch) holds, by their names and units.

    Bank and anchor poses are metres (every value checked); annotation rows check pose_3d where it
    is not null and pose_2d on the visible joints (the others are legitimately NaN when a person
    could not be completed).
    """
    names = set(table.schema.names)
    for name in ("pose_3d", "pose_2d_full", "pose_2d_upper"):
        if name in names:
            col = table.column(name)
            values, valid = _fixed(col, col.type.list_size)
            check_values(path, name, values, BOUND_M, rows=valid, first_row=first_row)
    if "pose_2d" in names:
        col = table.column("pose_2d")
        values, valid = _fixed(col, col.type.list_size)
        if "visible" in names:  # annotations: pixels, visible joints only
            j = col.type.list_size // 2
            vis = table.column("visible")
            if hasattr(vis, "combine_chunks"):
                vis = vis.combine_chunks()
            visible = vis.flatten().to_numpy(zero_copy_only=False).astype(bool).reshape(-1, j)
            mask = visible & valid[:, None]
            check_values(path, "pose_2d", values.reshape(-1, j, 2), BOUND_PX, rows=mask, first_row=first_row)
        else:  # bank: orthographic metres
            check_values(path, "pose_2d", values, BOUND_M, rows=valid, first_row=first_row)


def image_file(images_root: str | Path, name: str, *, allow_outside: bool = False, where: str | Path = "") -> Path:
    """The file of an `image` column value: `name` relative to `images_root`, refused when it
    leaves the root (an absolute path, or ".." above it) unless `allow_outside`.

    Shards are data: a crafted or damaged one must not make a reader open /etc/passwd or another
    user's files. The check is on the path's text (after normalisation), before any file is opened.

    Raises:
        InputError: naming `where` (the shard) and the offending path.
    """
    norm = os.path.normpath(name)
    outside = os.path.isabs(name) or norm == os.pardir or norm.startswith(os.pardir + os.sep)
    if outside and not allow_outside:
        raise InputError(where or name, f"image path {name!r} leaves the images root {images_root}; refused "
                         "(images must lie below the images root, unless reading outside it is allowed)")  # fmt: skip
    return Path(images_root) / name


# --- posebank verify ---------------------------------------------------------------------------------


@dataclass
class VerifyReport:
    """What `verify_output` found: the folder, its kind, the files checked and the problems."""

    root: Path
    kind: str
    files: int = 0
    rows: int = 0
    bytes: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _find_root(path: Path) -> Path:
    """The output folder holding `path` (itself, or the nearest parent with a manifest or journal)."""
    for candidate in [path, *path.resolve().parents][:3]:
        if candidate.is_dir() and any((candidate / n).is_file() for n in (MANIFEST, JOB_FILE, "audit.json")):
            return candidate
    raise InputError(path, f"not a posebank output: no {MANIFEST} or {JOB_FILE} here or above")


def _schema_for(kind: str, table: Any) -> Any:
    from .shards import anchors_schema, annotations_schema, bank_schema

    if kind == "bank":
        return bank_schema(table.schema.field("pose_3d").type.list_size // 3)
    if kind == "anchors":
        return anchors_schema(table.schema.field("pose_3d").type.list_size // 3)
    if kind in ("annotations", "synth"):
        return annotations_schema(table.schema.field("pose_2d").type.list_size // 2)
    return None


def _verify_parquet(path: Path, kind: str, entry: dict[str, Any], report: VerifyReport) -> None:
    from .shards import SOURCE_ID_COLUMNS, read_table, validate

    try:
        table = read_table(path)
    except Exception as err:  # noqa: BLE001 -- any decoding failure is damage, reported with the file
        report.problems.append(f"{path}: cannot be read as Parquet ({err})")
        return
    report.rows += table.num_rows
    if "rows" in entry and table.num_rows != entry["rows"]:
        report.problems.append(f"{path}: {table.num_rows} rows where {MANIFEST} records {entry['rows']}")
    schema = _schema_for(kind, table)
    try:
        if schema is not None:
            # Shards written before the source-id columns were added lack them: still valid.
            validate(table, schema, path=path, optional=SOURCE_ID_COLUMNS if kind in ("annotations", "synth") else ())
        check_table_values(table, path)
    except InputError as err:
        report.problems.append(str(err))


def verify_output(path: str | Path) -> VerifyReport:
    """Check an output folder of any posebank command fully: every file its manifest (or journal)
    lists is present, has its size and sha256, reads back, has the rows and schema recorded, and
    holds finite, plausible values; synthetic images exist; no temporary file is left.

    Args:
        path: the folder (or a file inside it).

    Returns:
        A VerifyReport; `problems` is empty when everything checks out.

    Raises:
        InputError: `path` is not a posebank output.
    """
    root = _find_root(Path(path))
    manifest_path = root / MANIFEST
    journal: dict[str, Any] = {}
    if (root / JOB_FILE).is_file():
        try:
            journal = json.loads((root / JOB_FILE).read_text(encoding="utf-8"))
        except ValueError:
            journal = {}
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except ValueError as err:
            raise InputError(manifest_path, f"not valid JSON ({err})") from None
        kind = str(manifest.get("kind", "unknown"))
        entries = manifest_files(manifest)
    elif (root / "audit.json").is_file() or journal.get("kind") in JOURNAL_ONLY_KINDS:
        kind = str(journal.get("kind", "audit"))
        manifest = {}
        entries = [{"file": k, **v} for k, v in sorted(journal.get("files", {}).items())]
    else:
        report = VerifyReport(root, str(journal.get("kind", "unknown")))
        report.problems.append(f"{root}: no {MANIFEST}: the job has not finished; rerun it to resume")
        return report
    report = VerifyReport(root, kind)
    for entry in entries:
        f = root / entry["file"]
        report.files += 1
        if not f.is_file():
            report.problems.append(f"{f}: listed but missing")
            continue
        size = f.stat().st_size
        report.bytes += size
        if "bytes" in entry and size != entry["bytes"]:
            report.problems.append(f"{f}: {size} bytes where {entry['bytes']} were recorded")
        if "sha256" in entry and sha256_file(f) != entry["sha256"]:
            report.problems.append(f"{f}: sha256 differs from the one recorded when it was written")
            continue
        if f.suffix == ".parquet":
            _verify_parquet(f, kind, entry, report)
    if kind == "synth" and entries:
        _verify_images(root, manifest, entries, report)
    temp = sorted(str(p) for p in root.rglob("*") if is_temp_file(p))
    if temp:
        report.problems.append(f"{len(temp)} temporary file(s) left by an interrupted run, e.g. {temp[0]} "
                               "(the next run of the job removes them)")  # fmt: skip
    return report


def _verify_images(root: Path, manifest: dict[str, Any], entries: list[dict[str, Any]], report: VerifyReport) -> None:
    from .shards import read_table

    images_root = root / manifest.get("images_root", "images")
    missing: list[str] = []
    for entry in entries:
        f = root / entry["file"]
        try:
            names = set(read_table(f, columns=["image"]).column("image").to_pylist())
        except Exception:  # noqa: BLE001 -- already reported by _verify_parquet
            continue
        missing += sorted(n for n in names if not (images_root / n).is_file())
    if missing:
        report.problems.append(f"{len(missing)} image(s) named by the shards are missing, e.g. {images_root / missing[0]}")
