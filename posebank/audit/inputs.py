"""Recognise what a path holds (bank, anchor table, annotation shards) from posebank's own metadata.

A bank folder has manifest.json with kind "bank"; anchors.parquet (alone or in its folder) has the
Parquet metadata kind "anchors"; annotation shards (a file, or a folder of them such as annotate's
--out) have kind "annotations". Nothing is guessed from file names beyond these conventions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..verify import check_output_files

KINDS = ("bank", "anchors", "annotations")


@dataclass(frozen=True)
class AuditInput:
    """One input of the audit.

    Attributes:
        path: the file or folder as given (resolved).
        kind: "bank" | "anchors" | "annotations".
        label: a short unique name used in the report and in output file names.
        files: the Parquet files to read (anchors: one; annotations: the shards, sorted; bank: empty,
            the bank's manifest lists its shards).
    """

    path: Path
    kind: str
    label: str
    files: tuple[Path, ...] = ()


def _parquet_kind(path: Path) -> str | None:
    from ..shards import read_metadata

    try:
        return read_metadata(path).get("kind")
    except (OSError, ValueError) as err:  # not Parquet, or unreadable
        raise InputError(path, f"cannot read its Parquet metadata ({err})") from None


def _parquet_files(folder: Path) -> list[Path]:
    return sorted(f for f in folder.rglob("*.parquet") if not f.name.startswith((".", "_")))


def detect_kind(path: str | Path) -> tuple[str, tuple[Path, ...]]:
    """What `path` holds, and the Parquet files to read.

    Returns:
        (kind, files): kind is "bank", "anchors" or "annotations".

    Raises:
        InputError: the path does not exist, or holds none of the three (or a mixture).
    """
    path = Path(path)
    if path.is_dir():
        manifest = path / "manifest.json"
        if manifest.is_file():
            try:
                kind = json.loads(manifest.read_text(encoding="utf-8")).get("kind")
            except (OSError, ValueError):
                kind = None
            if kind == "bank":
                return "bank", ()
        if (path / "anchors.parquet").is_file() and _parquet_kind(path / "anchors.parquet") == "anchors":
            return "anchors", (path / "anchors.parquet",)
        files = _parquet_files(path)
        if not files:
            raise InputError(path, "neither a bank (manifest.json), anchors.parquet nor annotation shards")
        kinds = {f: _parquet_kind(f) for f in files}
        if set(kinds.values()) == {"bank"}:
            raise InputError(path, "bank shards without their manifest.json: give the bank folder (build-bank --out)")
        others = sorted({str(k) for k in kinds.values()} - {"annotations"})
        if others:
            raise InputError(path, f"expected annotation shards only, found Parquet files of kind {', '.join(others)}")
        return "annotations", tuple(files)
    if path.is_file():
        if path.name == "manifest.json":
            return detect_kind(path.parent)
        kind = _parquet_kind(path)
        if kind in ("anchors", "annotations"):
            return kind, (path,)
        if kind == "bank":
            raise InputError(path, "a single bank shard: give the bank folder (build-bank --out)")
        raise InputError(path, f"not a posebank table (metadata kind {kind!r})")
    raise InputError(path, "no such file or folder")


def _label(path: Path, kind: str) -> str:
    name = path.stem if path.is_file() and path.name != "anchors.parquet" else (path.parent if path.is_file() else path).name
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name) or kind
    return safe


def resolve_inputs(paths: tuple[str, ...] | list[str]) -> list[AuditInput]:
    """Recognise every path; labels are the folder (or file) names, made unique with a -2, -3 suffix."""
    inputs: list[AuditInput] = []
    seen: set[str] = set()
    for p in paths:
        path = Path(p).expanduser().resolve()
        kind, files = detect_kind(path)
        check_output_files(files)  # banks are checked by open_bank
        label = _label(path, kind)
        base, n = label, 2
        while label in seen:
            label, n = f"{base}-{n}", n + 1
        seen.add(label)
        inputs.append(AuditInput(path, kind, label, files))
    return inputs
