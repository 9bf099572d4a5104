"""The output-folder contract (posebank.jobs) under faults, as a user meets them: shards damaged in
the middle, at the end and truncated; runs killed (SIGKILL) or stopped (SIGTERM) at several points,
then rerun and compared byte for byte with an uninterrupted run; the umask; refusals that name the
settings that differ; failed runs that must leave nothing; and the readers that must name a bad shard.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from posebank import verify
from posebank.annotate import AnnotateConfig, annotate
from posebank.anchors import AnchorConfig
from posebank.anchors.build import build_anchors, load_anchors
from posebank.audit import AuditConfig
from posebank.audit.run import run_audit
from posebank.bank import open_bank
from posebank.bank.build import build_bank
from posebank.config import BankConfig, ViewConfig
from posebank.errors import InputError, OutputConflictError
from posebank.jobs import JOB_FILE, JobSpec, OutputFolder
from posebank.provenance import is_temp_file, sha256_file
from posebank.synth.config import SynthConfig
from posebank.synth.writer import synthesize

FIXTURES = Path(__file__).resolve().parent / "fixtures"
DEMO = FIXTURES / "demo" / "cmu"
MPII = FIXTURES / "demo" / "mpii" / "valid_a.h5"


def _source(tmp: Path) -> Path:
    """One real CMU subject (135, take 04) in the CMU layout."""
    root = tmp / "cmu"
    (root / "subjects" / "135").mkdir(parents=True)
    for name in ("135.asf", "135_04.amc"):
        shutil.copy(DEMO / "subjects" / "135" / name, root / "subjects" / "135")
    return root


def _config(root: Path, out: Path, **kw: object) -> BankConfig:
    # 20 poses per shard: several shards, so that runs can be killed between and inside them.
    defaults: dict[str, object] = dict(sources=(("cmu", str(root)),), out=str(out), view=ViewConfig(views=4),
                                       poses_per_shard=20)  # fmt: skip
    defaults.update(kw)
    return BankConfig(**defaults)  # type: ignore[arg-type]


def _shard_digests(out: Path) -> dict[str, str]:
    return {p.name: sha256_file(p) for p in sorted((out / "shards").glob("*.parquet"))}


def _temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if is_temp_file(p)]


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _source(tmp_path_factory.mktemp("src"))


@pytest.fixture(scope="module")
def reference(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted build: what every interrupted-then-resumed build must equal, byte for byte."""
    out = tmp_path_factory.mktemp("reference") / "bank"
    build_bank(_config(source, out))
    assert len(_shard_digests(out)) >= 5
    return out


# --- 1 and 3: damaged shards are rebuilt, never reused ------------------------------------------------


def _damage(path: Path, how: str) -> None:
    size = path.stat().st_size
    if how == "truncate":
        with open(path, "r+b") as f:
            f.truncate(size // 3)
        return
    offset = size // 2 if how == "middle" else size - 200  # "end": inside the last page, footer intact
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(b"\x7f" * 64)


@pytest.mark.parametrize("how", ["middle", "end", "truncate"])
@pytest.mark.parametrize("overwrite", [False, True])
def test_a_damaged_shard_is_rebuilt_on_rerun(source: Path, reference: Path, tmp_path: Path, how: str, overwrite: bool) -> None:
    out = tmp_path / "bank"
    shutil.copytree(reference, out)
    victim = out / "shards" / "cmu-00002.parquet"
    _damage(victim, how)
    assert sha256_file(victim) != sha256_file(reference / "shards" / victim.name)
    report = build_bank(_config(source, out), overwrite=overwrite)
    assert report.shards_damaged == 1 and report.shards_written == 1
    assert report.shards_reused == len(_shard_digests(reference)) - 1
    assert _shard_digests(out) == _shard_digests(reference)
    manifest = json.loads((out / "manifest.json").read_text())
    assert {s["file"]: s["sha256"] for s in manifest["shards"]} == {
        s["file"]: s["sha256"] for s in json.loads((reference / "manifest.json").read_text())["shards"]
    }
    assert verify.verify_output(out).ok


# --- 2: every reader verifies, and names the bad shard ------------------------------------------------------


@pytest.fixture(scope="module")
def damaged_bank(reference: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("damaged") / "bank"
    shutil.copytree(reference, out)
    _damage(out / "shards" / "cmu-00001.parquet", "middle")
    return out


def test_verify_names_the_damaged_shard(damaged_bank: Path, reference: Path) -> None:
    report = verify.verify_output(damaged_bank)
    assert not report.ok and len(report.problems) == 1
    assert "shards/cmu-00001.parquet" in report.problems[0] and "sha256" in report.problems[0]
    good = verify.verify_output(reference / "shards" / "cmu-00000.parquet")  # a file inside the folder
    assert good.ok and good.kind == "bank" and good.rows == open_bank(reference).num_rows


def _run_reader(reader: str, bank: Path, out: Path) -> None:
    if reader == "annotate":
        annotate(AnnotateConfig(label_mode="fused-fit", dataset="mpii", annotation_file=str(MPII), bank=str(bank), out=str(out), engine="numpy"))
    elif reader == "anchors":
        build_anchors(AnchorConfig(bank=str(bank), out=str(out), k=4, engine="numpy", niter=2))
    elif reader == "synth":
        synthesize(SynthConfig(images=2, size=(64, 64), workers=1), bank, out)
    else:
        run_audit(AuditConfig(paths=(str(bank),), out=str(out), coverage_sample=50))


@pytest.mark.parametrize("reader", ["annotate", "anchors", "synth", "audit"])
def test_readers_refuse_a_damaged_bank_naming_the_shard(damaged_bank: Path, tmp_path: Path, reader: str) -> None:
    out = tmp_path / "out"
    with pytest.raises(InputError, match=r"shards/cmu-00001\.parquet: damaged"):
        _run_reader(reader, damaged_bank, out)
    assert not out.exists()  # 7: a failed run leaves no --out behind


def test_values_are_checked_where_hashing_is_not_cheap(reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bank too large to hash on every open is checked by size; a value damaged in a way that keeps
    the size (here: a valid file holding 3e36 m) is then caught as the rows are read, naming the shard and row."""
    out = tmp_path / "bank"
    shutil.copytree(reference, out)
    path = out / "shards" / "cmu-00001.parquet"
    table = pq.read_table(path)
    p3 = np.stack(table.column("pose_3d").to_numpy(zero_copy_only=False)).astype(np.float32)
    p3[7, 4] = 3e36
    column = pa.FixedSizeListArray.from_arrays(pa.array(p3.reshape(-1)), p3.shape[1])
    pq.write_table(table.set_column(table.schema.get_field_index("pose_3d"), "pose_3d", column), path)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["shards"][1]["bytes"] = path.stat().st_size  # only the sha256 can tell now
    (out / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setattr(verify, "CHEAP_SHA256_BYTES", 0)
    bank = open_bank(out)  # opens: sizes match, hashing skipped
    with pytest.raises(InputError, match=r"cmu-00001\.parquet \(row 7\): column 'pose_3d' holds 3e\+36"):
        list(bank.iter_poses(columns=("pose_3d",)))
    first = manifest["shards"][0]["rows"]
    with pytest.raises(InputError, match=r"cmu-00001\.parquet \(row 7\)"):
        bank.take(np.array([3, first + 7]), columns=("pose_3d",))
    np.testing.assert_array_equal(bank.take(np.array([3]), columns=("pose_id",))["pose_id"],
                                  open_bank(reference).take(np.array([3]), columns=("pose_id",))["pose_id"])  # fmt: skip


def test_anchors_and_annotations_are_verified_when_read(reference: Path, tmp_path: Path) -> None:
    anchors = tmp_path / "anchors"
    build_anchors(AnchorConfig(bank=str(reference), out=str(anchors), k=4, engine="numpy", niter=2))
    assert load_anchors(anchors).k == 4
    _damage(anchors / "anchors.parquet", "end")
    with pytest.raises(InputError, match=r"anchors\.parquet: damaged"):
        load_anchors(anchors)
    mpii = tmp_path / "mpii"
    annotate(AnnotateConfig(label_mode="fused-fit", dataset="mpii", annotation_file=str(MPII), bank=str(reference), out=str(mpii), engine="numpy"))
    shutil.copy(mpii / "annotations" / "part-00000.parquet", mpii / "annotations" / "part-00001.parquet")
    with pytest.raises(InputError, match=r"part-00001\.parquet: not listed in"):
        verify.check_output_files(sorted((mpii / "annotations").glob("*.parquet")))


# --- 4: killed and stopped runs -----------------------------------------------------------------------------------

_RUN = textwrap.dedent('''
    import os, signal, sys
    from posebank import shards
    from posebank.bank.build import build_bank
    from posebank.config import BankConfig, ViewConfig

    root, out, mode, at = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    sig = signal.SIGKILL if mode.startswith("kill") else signal.SIGTERM
    real_write, written = shards.write_table, [0]

    def write(table, path, **kw):  # the fault: a signal while shard `at` is being written
        if written[0] == at:
            if mode.endswith("mid-write"):  # half a file in the temporary path
                real_write(table, path, **kw)
                with open(path, "r+b") as f:
                    f.truncate(os.path.getsize(path) // 2)
            os.kill(os.getpid(), sig)
        real_write(table, path, **kw)
        written[0] += 1

    shards.write_table = write
    build_bank(BankConfig(sources=(("cmu", root),), out=out, view=ViewConfig(views=4), poses_per_shard=20))
''')


@pytest.mark.parametrize(("mode", "at"), [("kill", 0), ("kill-mid-write", 2), ("kill-mid-write", 4), ("term", 1),
                                          ("term-mid-write", 3)])  # fmt: skip
def test_an_interrupted_build_resumes_to_the_same_bytes(source: Path, reference: Path, tmp_path: Path, mode: str, at: int) -> None:
    out = tmp_path / "bank"
    run = subprocess.run([sys.executable, "-c", _RUN, str(source), str(out), mode, str(at)], capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    if mode.startswith("kill"):
        assert run.returncode == -signal.SIGKILL
        # SIGKILL cannot be caught: the temporary file of the shard being written stays ...
        assert len(_temp_files(out)) == 1
    else:
        assert run.returncode != 0 and "JobInterrupted" in run.stderr and "SIGTERM" in run.stderr
        assert _temp_files(out) == []  # ... SIGTERM unwinds the write: nothing half-written stays
    assert not (out / "manifest.json").exists() and (out / JOB_FILE).is_file()
    written_before = len(_shard_digests(out))
    assert written_before == at
    report = build_bank(_config(source, out))
    assert _temp_files(out) == []  # ... and is removed by the next run
    assert report.temp_files_removed == (1 if mode.startswith("kill") else 0)
    assert report.shards_reused == at and report.shards_damaged == 0
    assert _shard_digests(out) == _shard_digests(reference)
    assert verify.verify_output(out).ok


def test_a_shard_renamed_but_not_recorded_is_not_trusted(source: Path, reference: Path, tmp_path: Path) -> None:
    """A run killed between the rename and the journal write leaves a complete file the journal does
    not know: it is rebuilt (to the same bytes), not assumed good."""
    out = tmp_path / "bank"
    shutil.copytree(reference, out)
    journal = json.loads((out / JOB_FILE).read_text())
    del journal["files"]["shards/cmu-00003.parquet"]
    (out / JOB_FILE).write_text(json.dumps(journal))
    (out / "manifest.json").unlink()
    report = build_bank(_config(source, out))
    assert report.shards_written == 1 and report.shards_damaged == 0
    assert _shard_digests(out) == _shard_digests(reference)


# --- 5: the umask ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640)])
def test_files_honour_the_umask(source: Path, tmp_path: Path, umask: int, mode: int) -> None:
    previous = os.umask(umask)
    try:
        out = tmp_path / "bank"
        build_bank(_config(source, out))
    finally:
        os.umask(previous)
    files = [out / "manifest.json", out / JOB_FILE, *(out / "shards").glob("*.parquet")]
    assert {f.stat().st_mode & 0o777 for f in files} == {mode}


# --- 6: the identity holds every setting that changes the output, and a refusal names them ----------------


def test_annotate_refuses_another_engine_naming_both(reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "mpii"
    config = AnnotateConfig(label_mode="fused-fit", dataset="mpii", annotation_file=str(MPII), bank=str(reference), out=str(out), engine="numpy",
                            k=5)  # fmt: skip
    annotate(config)
    other = AnnotateConfig(**{**config.__dict__, "engine": "blas", "k": 3})
    with pytest.raises(OutputConflictError) as err:
        annotate(other)
    message = str(err.value)
    assert 'engine: "numpy" (in the folder) vs "blas" (this run)' in message
    assert 'k: 5 (in the folder) vs 3 (this run)' in message and "--overwrite" in message
    report = annotate(other, overwrite=True)
    assert report.engine == "blas" and report.shards_written == 1
    assert json.loads((out / "manifest.json").read_text())["engine"] == "blas"


def test_build_bank_refusal_names_the_settings_and_inputs(tmp_path: Path) -> None:
    root, out = _source(tmp_path), tmp_path / "bank"
    build_bank(_config(root, out, poses_per_shard=1000))
    with pytest.raises(OutputConflictError, match=r"view\.views: 4 \(in the folder\) vs 6 \(this run\)"):
        build_bank(_config(root, out, poses_per_shard=1000, view=ViewConfig(views=6)))
    shutil.copy(DEMO / "subjects" / "135" / "135_08.amc", root / "subjects" / "135" / "135_04.amc")  # new content
    with pytest.raises(OutputConflictError, match=r"input cmu:\S+135_04\.amc: sha256 \w+ \(in the folder\) vs sha256 \w+ \(this run\)"):
        build_bank(_config(root, out, poses_per_shard=1000))


# --- 7: failed runs leave nothing -------------------------------------------------------------------------------------


def test_a_failed_build_leaves_no_out(tmp_path: Path) -> None:
    root = _source(tmp_path)
    (root / "subjects" / "135" / "135_04.amc").write_text(":FULLY-SPECIFIED\n:DEGREES\n1\nroot 0 0 x\n")
    out = tmp_path / "bank"
    with pytest.raises(InputError, match="135_04.amc"):
        build_bank(_config(root, out))
    assert not out.exists()
    out.mkdir()  # a folder the user made: kept, but holds no journal of a job that produced nothing
    with pytest.raises(InputError):
        build_bank(_config(root, out))
    assert out.is_dir() and list(out.iterdir()) == []


def test_a_failed_synth_and_audit_leave_no_out(reference: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty-bank"
    shutil.copytree(reference, empty)
    manifest = json.loads((empty / "manifest.json").read_text())
    (empty / "manifest.json").write_text(json.dumps({**manifest, "shards": [], "rows": 0}))
    with pytest.raises(InputError, match="no poses"):
        synthesize(SynthConfig(images=2, size=(64, 64), workers=1), empty, tmp_path / "synth")
    assert not (tmp_path / "synth").exists()
    with pytest.raises(InputError, match="no anchors file"):
        run_audit(AuditConfig(paths=(str(reference),), out=str(tmp_path / "audit"), anchors=str(tmp_path / "none")))
    assert not (tmp_path / "audit").exists()


# --- the folder itself ----------------------------------------------------------------------------------------------


def test_one_process_at_a_time_and_unknown_outputs(tmp_path: Path) -> None:
    spec = JobSpec("bank", {"seed": 0}, outputs=("shards",))
    with OutputFolder(tmp_path / "out", spec) as job:
        job.write("shards/a.parquet", lambda tmp: tmp.write_bytes(b"x"))
        with pytest.raises(OutputConflictError, match="being written by another posebank process"):
            with OutputFolder(tmp_path / "out", spec):
                pass
    with OutputFolder(tmp_path / "out", spec) as job:  # released: the same job resumes
        assert job.resumed and job.reusable("shards/a.parquet")
    (tmp_path / "unknown" / "shards").mkdir(parents=True)
    (tmp_path / "unknown" / "shards" / "b.parquet").write_bytes(b"y")
    with pytest.raises(OutputConflictError, match=r"unknown job \(no \.job\.json\)"):
        with OutputFolder(tmp_path / "unknown", spec):
            pass
    with OutputFolder(tmp_path / "unknown", spec, overwrite=True) as job:
        assert not (tmp_path / "unknown" / "shards" / "b.parquet").exists() and not job.resumed
