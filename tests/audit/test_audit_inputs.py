"""`posebank audit` recognises banks, anchor tables and annotation shards by their own metadata,
and importing posebank.audit stays light."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from posebank.audit import detect_kind, resolve_inputs
from posebank.errors import InputError


def test_each_kind_is_recognised(bank_dir: Path, anchors_dir: Path, mpii_dir: Path) -> None:
    assert detect_kind(bank_dir) == ("bank", ())
    assert detect_kind(bank_dir / "manifest.json") == ("bank", ())
    assert detect_kind(anchors_dir) == ("anchors", (anchors_dir / "anchors.parquet",))
    assert detect_kind(anchors_dir / "anchors.parquet")[0] == "anchors"
    shard = mpii_dir / "annotations" / "part-00000.parquet"
    assert detect_kind(mpii_dir) == ("annotations", (shard,))
    assert detect_kind(mpii_dir / "annotations") == ("annotations", (shard,))
    assert detect_kind(shard) == ("annotations", (shard,))


def test_what_is_not_an_input_is_refused(bank_dir: Path, tmp_path: Path) -> None:
    shard = next((bank_dir / "shards").glob("*.parquet"))
    with pytest.raises(InputError, match="bank folder"):
        detect_kind(shard)
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy(shard, lone)
    with pytest.raises(InputError, match="manifest.json"):
        detect_kind(lone)
    with pytest.raises(InputError, match="neither"):
        detect_kind(_empty(tmp_path))
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError):
        detect_kind(tmp_path / "notes.txt")
    with pytest.raises(InputError, match="no such"):
        detect_kind(tmp_path / "missing")


def _empty(tmp_path: Path) -> Path:
    p = tmp_path / "empty"
    p.mkdir()
    return p


def test_labels_are_unique(mpii_dir: Path, coco_dir: Path) -> None:
    inputs = resolve_inputs([str(mpii_dir), str(mpii_dir / "annotations"), str(coco_dir)])
    assert [i.kind for i in inputs] == ["annotations"] * 3
    assert len({i.label for i in inputs}) == 3


def test_import_is_light() -> None:
    code = ("import sys, posebank.audit, cli.audit; heavy = [m for m in ('torch', 'faiss', 'matplotlib', 'pyarrow') "
            "if m in sys.modules]; print(heavy); sys.exit(1 if heavy else 0)")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).parents[2], check=False)
    assert done.returncode == 0, done.stdout + done.stderr
