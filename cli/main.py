"""The `posebank` command line. Thin: parse options into a config, call one library function, summarise."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer

from .annotate import register as register_annotate
from .audit import register as register_audit
from .console import DEFAULT_WORKERS, KMeansEngine, fail, progress_bar, stderr_console, workers_option
from .export import register as register_export
from .help_format import FlagGroup
from .h36m import register as register_h36m
from .model import register as register_model
from .synth import register as register_synth

app = typer.Typer(
    name="posebank",
    cls=FlagGroup,
    help="Training data for multi-person 2D+3D human pose detection (LCR-Net++): MoCap banks, "
    "pseudo-3D annotations, anchor-poses and the detector.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _parse_sources(values: list[str]) -> tuple[tuple[str, str], ...]:
    pairs = []
    for v in values:
        name, sep, path = v.partition("=")
        if not sep or not name or not path:
            raise typer.BadParameter(f"{v!r}: expected NAME=PATH, e.g. cmu=/data/cmu", param_hint="--source")
        pairs.append((name.strip().lower(), str(Path(path).expanduser().resolve())))
    return tuple(pairs)


@app.command("build-bank")
def build_bank_command(
    source: Annotated[
        list[str],
        typer.Option(
            "--source",
            help="NAME=PATH, repeatable. NAME is cmu, hdm05, poseprior, bvh or h36m; PATH the dataset folder as "
            "distributed (CMU: subjects/NN/NN.asf with NN_MM.amc; HDM05: HDM_<actor>.asf and "
            "HDM_<actor>_*.amc anywhere below; BVH: *.bvh below; Pose Prior: testingSet.mat below; Human3.6M: "
            "<S>/MyPoseFeatures/D3_Positions/*.cdf, VideoPose3D's data_3d_h36m.npz, or an mmpose npz with cameras.pkl).",
        ),
    ],
    out: Annotated[Path, typer.Option(help="Output folder: shards/*.parquet and manifest.json.")],
    views: Annotated[int, typer.Option(min=1, help="Random virtual cameras per pose.")] = 20,
    seed: Annotated[int, typer.Option(help="Seed of the views: same inputs and seed give the same bank.")] = 0,
    fps: Annotated[float, typer.Option(min=0, help="Resample sequences to this rate (nearest frames; 0 keeps all).")] = 30.0,
    dedup_mm: Annotated[
        float, typer.Option(min=0, help="Drop a pose within this mean per-joint distance (mm) of a kept pose of the same source (0: keep all).")
    ] = 20.0,
    skeleton: Annotated[str, typer.Option(help="Canonical joint set: j13 (LCR-Net) or j17.")] = "j13",
    elevation_min: Annotated[float, typer.Option(help="Lowest camera elevation, degrees (negative: looking up).")] = -15.0,
    elevation_max: Annotated[float, typer.Option(help="Highest camera elevation, degrees (positive: looking down).")] = 45.0,
    roll_max: Annotated[float, typer.Option(min=0, help="Camera roll drawn in [-roll_max, roll_max] degrees.")] = 15.0,
    poses_per_shard: Annotated[int, typer.Option(min=1, help="Poses per Parquet file (rows = poses x views).")] = 25_000,
    workers: Annotated[int, workers_option("read and map motion files")] = DEFAULT_WORKERS,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip unreadable files and list them in the manifest instead of failing.")] = False,
    subjects: Annotated[str, typer.Option(help="Comma-separated subjects to keep, e.g. S1,S5,S6,S7,S8 (Human3.6M training); empty keeps all.")] = "",
    poseprior_thorax: Annotated[bool, typer.Option(help="Pose Prior: put back the thorax bone its release lacks (about 12 cm; its "
                                                   "torsos are 0.40 m where CMU's are 0.51 m). --no-poseprior-thorax reads it as released.")] = True,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an --out that holds a bank of other inputs or config.")] = False,
    part: Annotated[Optional[str], typer.Option(help="Only read part I of N (e.g. 3/8) of the motion files into --out/.cache, "
                                                "for a scheduler's array jobs; then one run without --part writes the bank.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Build the projection bank: MoCap -> canonical skeleton (metres) -> dedup -> random views -> Parquet.

    Rerunning the same command resumes: files already read and shards already written are reused.
    """
    from posebank.bank.build import build_bank
    from posebank.config import BankConfig, ViewConfig
    from posebank.errors import PosebankError
    from posebank.parts import parse_part

    console = stderr_console()
    try:
        config = BankConfig(
            sources=_parse_sources(source), out=str(out), skeleton=skeleton, fps=fps, dedup_mm=dedup_mm, seed=seed,
            view=ViewConfig(views=views, elevation_min_deg=elevation_min, elevation_max_deg=elevation_max, roll_max_deg=roll_max),
            poses_per_shard=poses_per_shard, workers=workers, skip_bad=skip_bad,
            subjects=tuple(s.strip() for s in subjects.split(",") if s.strip()), poseprior_thorax=poseprior_thorax,
        )  # fmt: skip
        report = build_bank(config, overwrite=overwrite, progress=progress_bar(console, quiet),
                            part=parse_part(part) if part else None)  # fmt: skip
    except (PosebankError, ValueError) as err:
        raise fail(err) from None
    if report.part:
        print(f"part {part}: {report.files_in_part} motion file(s), {report.files_read} read, the others already in "
              f"{out}/.cache; skipped {len(report.skipped)}; {report.seconds['total']:.1f} s. When every part is done, "
              "run the same command without --part to deduplicate and write the bank.")  # fmt: skip
        return
    _print_bank_summary(report)


def _print_bank_summary(report) -> None:  # noqa: ANN001 -- posebank.bank.build.BuildReport
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"bank {escape(str(report.out))}")
    for col in ("source", "sequences", "poses", "kept", "dedup %", "rows"):
        table.add_column(col, justify="right" if col != "source" else "left")
    views = report.rows // max(1, sum(s["kept"] for s in report.stats.values()))
    for source, s in report.stats.items():
        dropped = 100.0 * (1 - s["kept"] / s["poses"]) if s["poses"] else 0.0
        table.add_row(source, str(s["sequences"]), str(s["poses"]), str(s["kept"]), f"{dropped:.1f}", str(s["kept"] * views))
    out = Console()
    out.print(table)
    out.print(
        f"{report.rows} rows; shards written {report.shards_written}, reused {report.shards_reused}; "
        f"skipped {len(report.skipped)} file(s); {report.seconds.get('total', 0):.1f} s"
    )
    if report.shards_damaged:
        out.print(f"  rebuilt {report.shards_damaged} damaged shard(s) (bytes differed from those written)")
    for s in report.skipped:
        out.print(f"  skipped {s['path']}: {s['reason']}", highlight=False, markup=False)


@app.command("anchors")
def anchors_command(
    bank: Annotated[Path, typer.Option(exists=True, file_okay=False, resolve_path=True, help="Bank folder (build-bank --out).")],
    out: Annotated[Path, typer.Option(help="Output folder: anchors.parquet, anchors_lcrnet.npy, manifest.json.")],
    k: Annotated[int, typer.Option(min=1, help="Number of anchor-poses (the paper's best for MPII: 200).")] = 200,
    seed: Annotated[int, typer.Option(help="Seeds the sample and the K-means initialisation.")] = 0,
    engine: Annotated[KMeansEngine, typer.Option(help="K-means engine (auto: torch on a GPU, else faiss).")] = "auto",
    sample: Annotated[int, typer.Option(min=0, help="Bank rows drawn for K-means (0: all).")] = 1_000_000,
    niter: Annotated[int, typer.Option(min=1, help="K-means iterations.")] = 25,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace anchors of another bank or config in --out.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Cluster anchor-poses with K-means on the bank's oriented 3D poses (full-body and upper-body 2D).

    Also writes anchors_lcrnet.npy in the LCR-Net release layout: float32 (2K, 5J) rows
    \\[x(J), y(J), X(J), Y(J), Z(J)], full-body anchors first, X and Y negated as the release stores them.
    """
    from posebank.anchors import AnchorConfig
    from posebank.anchors.build import build_anchors
    from posebank.errors import PosebankError

    config = AnchorConfig(bank=str(bank), out=str(out), k=k, sample=sample, seed=seed, engine=engine, niter=niter)
    try:
        report = build_anchors(config, overwrite=overwrite, progress=progress_bar(stderr_console(), quiet))
    except (PosebankError, ValueError) as err:
        raise fail(err) from None
    m = report.anchors.members
    if report.reused:
        print(f"anchors in {out} are up to date ({report.anchors.k} anchors)")
        return
    print(
        f"{report.anchors.k} anchors from {report.points} poses ({report.engine}) in {report.seconds['total']:.1f} s; "
        f"members min {m.min()} median {int(np.median(m))} max {m.max()}; inertia {report.inertia:.1f} m^2 -> {out}"
    )


@app.command("verify")
def verify_command(
    path: Annotated[Path, typer.Argument(exists=True, resolve_path=True, help="An output folder of any posebank command (or a file in one).")],
) -> None:
    """Check an output folder fully: every file its manifest lists is there with its size and sha256,
    reads back with the recorded rows and schema, and holds finite values; no temporary file is left.

    Exit code 0 when everything checks out, 1 otherwise (each problem on one line, naming its file).
    """
    from posebank.errors import PosebankError
    from posebank.verify import verify_output

    try:
        report = verify_output(path)
    except PosebankError as err:
        raise fail(err) from None
    if report.ok:
        print(f"{report.root}: {report.kind} ok: {report.files} file(s), {report.rows} rows, {report.bytes} bytes")
        return
    console = stderr_console()
    for problem in report.problems:
        console.print(problem, markup=False, highlight=False, soft_wrap=True)
    raise fail(ValueError(f"{report.root}: {len(report.problems)} problem(s) in {report.kind} output"))


register_annotate(app)
register_export(app)
register_synth(app)
register_audit(app)
register_h36m(app)
register_model(app)


def _print_version(value: bool) -> None:
    if value:
        from posebank.provenance import git_revision, package_version

        print(f"posebank {package_version()} ({git_revision()[:12]})")
        raise typer.Exit()


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log library messages.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


if __name__ == "__main__":
    app()
