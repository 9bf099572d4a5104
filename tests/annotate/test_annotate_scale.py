"""`annotate` at dataset scale: --part slices, memory-bounded bank blocks, the stored faiss-ivf index."""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from posebank.annotate import AnnotateConfig, LifterConfig, annotate, label_people
from posebank.annotate.matching import (
    BankRows, QuerySet, block_rows_for_memory, iter_bank_blocks, open_bank_rows, search_bank, search_bank_sets,
)  # fmt: skip
from posebank.bank import open_bank
from posebank.bank.build import build_bank
from posebank.config import BankConfig, ViewConfig
from posebank.datasets2d import read_annotations, to_canonical_2d
from posebank.parts import parse_part, part_range
from posebank.search import SearchConfig
from posebank.search.ivf_store import INDEX_DIR

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "demo"
MPII_H5 = FIXTURES / "mpii" / "valid_a.h5"  # the real MPII validation sample, 1500 people


@pytest.fixture(scope="module")
def bank_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cmu")
    for subject, seq in (("09", "09_12"), ("135", "135_04")):
        (root / "subjects" / subject).mkdir(parents=True)
        for f in (f"{subject}.asf", f"{seq}.amc"):
            shutil.copy(FIXTURES / "cmu" / "subjects" / subject / f, root / "subjects" / subject)
    out = tmp_path_factory.mktemp("bank")
    build_bank(BankConfig(sources=(("cmu", str(root)),), out=str(out), view=ViewConfig(views=8)))
    return out


def _rows(out: Path) -> pa.Table:
    """Every annotation row of an output folder, in shard order, without file metadata."""
    files = sorted((out / "annotations").glob("part-*.parquet"))
    return pa.concat_tables([pq.read_table(f).replace_schema_metadata(None) for f in files])


def _same(a: pa.Table, b: pa.Table) -> bool:
    """Same schema and values (NaN equal to NaN, unlike pa.Table.equals)."""
    return a.schema.equals(b.schema) and all(
        json.dumps(a.column(c).to_pylist()) == json.dumps(b.column(c).to_pylist()) for c in a.column_names
    )


def _config(bank_dir: Path, out: Path, **kw: object) -> AnnotateConfig:
    base = dict(dataset="mpii", annotation_file=str(MPII_H5), bank=str(bank_dir), out=str(out), engine="blas", k=3,
                label_mode="top1", people_per_shard=400)  # fmt: skip
    return AnnotateConfig(**{**base, **kw})


def test_parts_cover_every_unit_once() -> None:
    for units in (0, 1, 4, 7, 100):
        for n in (1, 2, 3, 8):
            got = [u for i in range(1, n + 1) for u in part_range(units, (i, n))]
            assert got == list(range(units))
    assert parse_part(" 3/8 ") == (3, 8)
    for bad in ("0/4", "5/4", "3", "a/b", "1/0"):
        with pytest.raises(ValueError, match="--part"):
            parse_part(bad)


@pytest.mark.parametrize("mode", ["top1", "lifted-fit"])  # lifted-fit: one network for every part
def test_parts_together_are_one_run(bank_dir: Path, tmp_path: Path, mode: str) -> None:
    mode_kw = {"label_mode": mode, "lifter": LifterConfig(steps=40)}
    whole = annotate(_config(bank_dir, tmp_path / "whole", **mode_kw))
    assert whole.shards_written == 4 and whole.people == 1500
    reports = [annotate(_config(bank_dir, tmp_path / f"part{i}", part=(i, 3), **mode_kw)) for i in (1, 2, 3)]
    assert [r.shards_written for r in reports] == [1, 1, 2] and sum(r.people for r in reports) == 1500
    names = sorted(f.name for i in (1, 2, 3) for f in (tmp_path / f"part{i}" / "annotations").glob("*.parquet"))
    assert names == sorted(f.name for f in (tmp_path / "whole" / "annotations").glob("*.parquet"))
    parts = pa.concat_tables([_rows(tmp_path / f"part{i}") for i in (1, 2, 3)])
    assert parts.num_rows == 1500 and _same(parts, _rows(tmp_path / "whole"))
    manifest = json.loads((tmp_path / "part3" / "manifest.json").read_text())
    assert manifest["part"] == [3, 3] and manifest["people"] == 700
    # A part is resumable like a whole run, and another part is another job.
    assert annotate(_config(bank_dir, tmp_path / "part3", part=(3, 3), **mode_kw)).shards_reused == 2


def test_small_bank_blocks_give_the_same_matches(bank_dir: Path) -> None:
    bank = open_bank(bank_dir)
    starts = [s for s, _ in iter_bank_blocks(bank, 1000)]
    assert starts == list(range(0, bank.num_rows, 1000))  # blocks span shard files, fixed boundaries
    canon = to_canonical_2d(read_annotations("mpii", MPII_H5))
    sel = canon.visible[:300].sum(1) >= 3
    q, m = canon.pose_2d[:300][sel], canon.visible[:300][sel]
    one = search_bank(bank, q, m, 5, config=SearchConfig(engine="blas"))
    # The first search stored the prepared bank beside it; this one slices that copy, in other blocks.
    assert len(list((bank_dir / INDEX_DIR).glob("prepared-*"))) == 1
    many = search_bank(bank, q, m, 5, config=SearchConfig(engine="blas"), block_rows=777)
    np.testing.assert_allclose(many.distances, one.distances, atol=1e-6)
    distinct = np.diff(one.distances, axis=1).min(axis=1) > 1e-5  # ties aside
    np.testing.assert_array_equal(many.rows[distinct], one.rows[distinct])
    # The budget sets the block: 8 GiB holds millions of rows, 0.1 GiB some hundred thousand.
    assert block_rows_for_memory(8 * 2**30, 13, "blas") > 5_000_000
    assert 50_000 < block_rows_for_memory(0.1 * 2**30, 13, "faiss-ivf") < block_rows_for_memory(0.1 * 2**30, 13, "blas")
    with pytest.raises(ValueError, match="memory budget"):
        block_rows_for_memory(2**19, 13, "blas")


def test_a_check_set_scans_ivf_nprobe_check_cells(bank_dir: Path) -> None:
    """annotate's left/right check asks only whether a much better match exists: faiss-ivf scans
    SearchConfig.ivf_nprobe_check cells for it (half for full-body queries), exact engines everything."""
    bank = open_bank(bank_dir)
    canon = to_canonical_2d(read_annotations("mpii", MPII_H5))
    sel = canon.visible[:300].sum(1) >= 3
    q, m = canon.pose_2d[:300][sel], canon.visible[:300][sel]
    ivf = SearchConfig(engine="faiss-ivf", ivf_nlist=32, ivf_nprobe=32, ivf_nprobe_full=32, ivf_nprobe_check=2)
    checked, labelled = search_bank_sets(bank, [QuerySet(q, m, 1, check=True), QuerySet(q, m, 1)], config=ivf,
                                         store_index=False)  # fmt: skip
    narrow = search_bank_sets(bank, [QuerySet(q, m, 1)], config=replace(ivf, ivf_nprobe=2, ivf_nprobe_full=1),
                              store_index=False)[0]  # fmt: skip
    exact = search_bank(bank, q, m, 1, config=SearchConfig(engine="blas"))
    np.testing.assert_array_equal(checked.distances, narrow.distances)  # 2 cells (1 for full bodies), not 32
    np.testing.assert_allclose(labelled.distances, exact.distances, atol=1e-5)  # every cell: exact
    assert (checked.distances >= labelled.distances - 1e-6).all() and (checked.distances > labelled.distances + 1e-6).any()
    blas = search_bank_sets(bank, [QuerySet(q, m, 1, check=True)], config=SearchConfig(engine="blas"))[0]
    np.testing.assert_array_equal(blas.distances, exact.distances)


def test_sets_searched_in_one_pass_get_what_each_gets_alone(bank_dir: Path) -> None:
    """search_bank_sets scores every set's queries together (one batch per block, the largest k); each set
    gets what a search of it alone gives, for an approximate engine (few cells) as for an exact one."""
    bank = open_bank(bank_dir)
    canon = to_canonical_2d(read_annotations("mpii", MPII_H5))
    sel = canon.visible[:200].sum(1) >= 3
    q, m = canon.pose_2d[:200][sel], canon.visible[:200][sel]
    flip = list(bank.skeleton.flip_permutation)
    sets = [QuerySet(q, m, 5), QuerySet(q[:, flip], m[:, flip], 1, check=True)]
    for config in (SearchConfig(engine="faiss-ivf", ivf_nlist=32, ivf_nprobe=3, ivf_nprobe_full=2, ivf_nprobe_check=2),
                   SearchConfig(engine="blas")):  # fmt: skip
        together = search_bank_sets(bank, sets, config=config, store_index=False, block_rows=2000)
        for one, alone in zip(together, (search_bank_sets(bank, [s], config=config, store_index=False, block_rows=2000)[0]
                                         for s in sets)):  # fmt: skip
            assert one.distances.shape == alone.distances.shape
            np.testing.assert_allclose(one.distances, alone.distances, atol=1e-6)
            distinct = np.r_[np.diff(alone.distances, axis=1).min(axis=1) > 1e-5] if alone.distances.shape[1] > 1 else slice(None)
            np.testing.assert_array_equal(one.rows[distinct], alone.rows[distinct])


def test_ivf_index_is_stored_with_the_bank_and_reused(bank_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bank_copy = tmp_path / "bank"
    shutil.copytree(bank_dir, bank_copy, ignore=shutil.ignore_patterns(INDEX_DIR))
    first = annotate(_config(bank_copy, tmp_path / "a", engine="faiss-ivf"))
    stored = list((bank_copy / INDEX_DIR).glob("ivf-*"))
    # The gather table stored beside it holds the bank's rows as the shards do.
    bank = open_bank(bank_copy)
    rows = np.array([0, 5, 77, bank.num_rows - 1])
    got, want = open_bank_rows(bank).take(rows), bank.take(rows, columns=BankRows.COLUMNS)
    for column in BankRows.COLUMNS:
        np.testing.assert_array_equal(got[column], want[column])
    assert len(stored) == 1 and first.matched > 0
    # The prepared rows are stored once, in the prepared bank the exact engines read too, not in the index.
    prepared = list((bank_copy / INDEX_DIR).glob("prepared-*"))
    assert len(prepared) == 1 and (prepared[0] / "coords.npy").is_file() and not (stored[0] / "coords.npy").exists()
    meta = json.loads((stored[0] / "meta.json").read_text())
    assert meta["bank_rows"] == [0, open_bank(bank_copy).num_rows] and meta["files"]["tables"]["sha256"]
    before = {f.name: f.stat().st_mtime_ns for f in stored[0].iterdir()}
    # Another run (here another output folder, as for another dataset) loads it: nothing rewritten.
    annotate(_config(bank_copy, tmp_path / "b", engine="faiss-ivf"))
    assert {f.name: f.stat().st_mtime_ns for f in stored[0].iterdir()} == before
    assert _same(_rows(tmp_path / "b"), _rows(tmp_path / "a"))
    # A damaged index does not verify: it is rebuilt (same seed, same index) and replaced.
    tables = stored[0] / "tables.npy"
    data = bytearray(tables.read_bytes())
    data[-5] ^= 0xFF
    tables.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="posebank.stored_arrays"):
        annotate(_config(bank_copy, tmp_path / "c", engine="faiss-ivf"))
    assert "do not verify" in caplog.text
    assert _same(_rows(tmp_path / "c"), _rows(tmp_path / "a"))
    left = sorted(p.name for p in (bank_copy / INDEX_DIR).iterdir())  # no temporary folder left
    assert left == sorted([stored[0].name, prepared[0].name, next(n for n in left if n.startswith("rows-"))])
    # An exact run on the same bank slices the same prepared bank: nothing more is stored.
    annotate(_config(bank_copy, tmp_path / "exact", engine="blas"))
    assert sorted(p.name for p in (bank_copy / INDEX_DIR).iterdir()) == left
    # Other index parameters are another index, beside the first.
    canon = to_canonical_2d(read_annotations("mpii", MPII_H5))
    label_people(open_bank(bank_copy), canon.pose_2d[:50], canon.visible[:50], k=2, label_mode="top1",
                 search=SearchConfig(engine="faiss-ivf", ivf_nlist=16))  # fmt: skip
    assert len(list((bank_copy / INDEX_DIR).glob("ivf-*"))) == 2
