"""`posebank audit PATH...`: how good are a bank, its anchors and its pseudo ground truth.

Thin: options -> AuditConfig -> posebank.audit.run_audit -> rich tables on stdout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .console import SearchEngine, fail, progress_bar, stderr_console

_PATHS_HELP = ("Banks (build-bank --out), anchor tables (anchors.parquet or its folder) and annotation shards or "
               "folders (annotate --out), in any mix: each is recognised by its posebank metadata.")
_ANCHORS_HELP = ("anchors.parquet (or its folder): anchor class usage of the annotated people (default: the one "
                 "anchor table among PATHS).")
_COMPARE_HELP = "A second bank: re-match the annotated joints against it and report the change of the match distance."


def audit_command(
    paths: Annotated[list[Path], typer.Argument(exists=True, resolve_path=True, show_default=False, help=_PATHS_HELP)],
    out: Annotated[Path, typer.Option(help="Output folder: audit.json, index.html, PNG plots, flagged-*.csv.")],
    images_root: Annotated[
        Path | None,
        typer.Option(exists=True, file_okay=False, resolve_path=True, help="Dataset images: the worst cases are drawn over them."),
    ] = None,
    anchors: Annotated[Path | None, typer.Option(exists=True, resolve_path=True, help=_ANCHORS_HELP)] = None,
    compare_bank: Annotated[Path | None, typer.Option(exists=True, file_okay=False, resolve_path=True, help=_COMPARE_HELP)] = None,
    worst: Annotated[int, typer.Option(min=0, help="Worst matches (and suspected swaps) drawn per dataset.")] = 12,
    listed: Annotated[int, typer.Option(min=0, help="Flagged people listed per flag in audit.json (all go to the CSV).")] = 1000,
    coverage_sample: Annotated[int, typer.Option(min=1, help="Poses per source sampled for the pose-space coverage.")] = 20_000,
    engine: Annotated[SearchEngine, typer.Option(help="Search engine for --compare-bank.")] = "auto",
    batch_rows: Annotated[int, typer.Option(min=1, help="Rows read at a time (bounds memory).")] = 262_144,
    seed: Annotated[int, typer.Option(help="Seeds the coverage samples.")] = 0,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace another audit (or other files) in --out.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Audit banks, anchor tables and annotation shards, with tables, plots and an HTML page.

    Writes a terminal summary, audit.json (every figure), PNG plots and one static HTML page
    (index.html) with the worst cases drawn."""
    from rich.console import Console

    from posebank.audit import AuditConfig, run_audit, summary_tables
    from posebank.errors import PosebankError

    config = AuditConfig(
        paths=tuple(str(p) for p in paths), out=str(out), images_root=str(images_root) if images_root else None,
        anchors=str(anchors) if anchors else None, compare_bank=str(compare_bank) if compare_bank else None,
        worst=worst, listed=listed, coverage_sample=coverage_sample, engine=engine, batch_rows=batch_rows, seed=seed,
    )  # fmt: skip
    try:
        result = run_audit(config, overwrite=overwrite, progress=progress_bar(stderr_console(), quiet))
    except (PosebankError, ValueError) as err:
        raise fail(err) from None
    console = Console()
    for table in summary_tables(result.report):
        console.print(table)
    console.print(f"audit of {len(result.report['inputs'])} input(s) -> {result.page}", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    """Add `posebank audit` to the app."""
    app.command("audit")(audit_command)
