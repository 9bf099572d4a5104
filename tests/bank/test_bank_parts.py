"""`build-bank --part I/N`: the parts read their slices of the motion files; one run then writes the same bank."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from posebank.bank.build import CACHE_DIR, build_bank
from posebank.config import BankConfig, ViewConfig

DEMO_CMU = Path(__file__).resolve().parents[1] / "fixtures" / "demo" / "cmu"  # 5 real CMU takes


def _config(out: Path) -> BankConfig:
    return BankConfig(sources=(("cmu", str(DEMO_CMU)),), out=str(out), view=ViewConfig(views=4))


def test_parts_then_one_run_give_the_bank_of_one_run(tmp_path: Path) -> None:
    whole = build_bank(_config(tmp_path / "whole"))
    assert whole.files_read == 5
    parts = [build_bank(_config(tmp_path / "parts"), part=(i, 3)) for i in (1, 2, 3)]
    assert [p.files_in_part for p in parts] == [1, 2, 2] and sum(p.files_read for p in parts) == 5
    assert not (tmp_path / "parts" / "shards").exists()  # parts only fill the cache
    assert len(list((tmp_path / "parts" / CACHE_DIR / "cmu").glob("*.npz"))) == 5
    again = build_bank(_config(tmp_path / "parts"), part=(2, 3))
    assert again.files_read == 0  # a part rerun finds its files read
    final = build_bank(_config(tmp_path / "parts"))
    assert final.files_read == 0 and final.rows == whole.rows
    manifests = [json.loads((tmp_path / d / "manifest.json").read_text()) for d in ("whole", "parts")]
    assert [s["sha256"] for s in manifests[0]["shards"]] == [s["sha256"] for s in manifests[1]["shards"]]
    for shard in manifests[0]["shards"]:
        a = pq.read_table(tmp_path / "whole" / shard["file"])
        b = pq.read_table(tmp_path / "parts" / shard["file"])
        assert a.equals(b)
