"""Human3.6M commands: `posebank annotate h36m` (true 2D and 3D per frame and camera) and
`posebank h36m-baseline` (the nearest-neighbour baseline on the paper's protocols)."""

# No `from __future__ import annotations`: Typer reads the option types at definition time.

from pathlib import Path
from typing import Annotated, Optional

import typer

from .annotate import annotate_app
from .console import SearchEngine, fail, progress_bar, stderr_console

_DATA_HELP = ("A Human3.6M copy: the official tree (<root>/<S>/MyPoseFeatures/...), VideoPose3D's data_3d_h36m.npz, "
              "or an mmpose npz (a file, or a folder holding them).")  # fmt: skip
_CAMERAS_HELP = "mmpose's cameras.pkl (found beside the data when not given); needed for world-frame layouts."


def annotate_h36m_command(
    data: Annotated[Path, typer.Argument(exists=True, resolve_path=True, help=_DATA_HELP)],
    out: Annotated[Path, typer.Option(help="Output folder: annotations/part-NNNNN.parquet and manifest.json.")],
    cameras: Annotated[Optional[Path], typer.Option(exists=True, dir_okay=False, resolve_path=True, help=_CAMERAS_HELP)] = None,
    protocol: Annotated[str, typer.Option(help="Split column: none (split = subject) | h36m-p1 | h36m-p2 | h36m-p3 (train/test rows).")] = "none",
    skeleton: Annotated[str, typer.Option(help="Canonical joint set: j13 (LCR-Net) or j17.")] = "j13",
    train_every: Annotated[int, typer.Option(min=1, help="Keep every n-th frame of training rows (test rows follow the protocol).")] = 5,
    subjects: Annotated[str, typer.Option(help="Comma-separated subjects to keep; empty keeps all (or the protocol's).")] = "",
    images_root: Annotated[Optional[Path], typer.Option(resolve_path=True, help="Frames extracted in mmpose's layout, recorded for train.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace another job's annotations in --out.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Annotate Human3.6M frames with their true 2D and 3D poses (no search), in the annotation-shard schema."""
    from posebank.errors import PosebankError
    from posebank.h36m.annotate import H36MAnnotateConfig, annotate_h36m

    try:
        config = H36MAnnotateConfig(
            data=str(data), cameras=str(cameras) if cameras else None, out=str(out), skeleton=skeleton, protocol=protocol,
            train_every=train_every, subjects=tuple(s.strip() for s in subjects.split(",") if s.strip()),
            images_root=str(images_root) if images_root else None,
        )  # fmt: skip
        report = annotate_h36m(config, overwrite=overwrite, progress=progress_bar(stderr_console(), quiet))
    except (PosebankError, ValueError) as err:
        raise fail(err) from None
    rows = ", ".join(f"{k} {v}" for k, v in sorted(report.rows.items()))
    if protocol != "none":
        from posebank.h36m.protocols import get_protocol

        expected = get_protocol(protocol).expected_test_frames
        if expected and report.rows.get("test", 0) != expected:  # e.g. a copy without every S11 sequence
            stderr_console().print(f"note: {report.rows.get('test', 0)} test rows; the paper's {protocol} has {expected}")
    print(f"h36m: {sum(report.rows.values())} rows ({rows}) from {report.sequences} sequence views; "
          f"{report.shards_written} shard(s); {report.seconds:.1f} s -> {out}")  # fmt: skip


def h36m_baseline_command(
    data: Annotated[Path, typer.Argument(exists=True, resolve_path=True, help=_DATA_HELP)],
    bank: Annotated[Path, typer.Option(exists=True, file_okay=False, resolve_path=True,
                                       help="A bank of the protocol's TRAINING subjects (build-bank --source h36m=... --subjects ...).")],  # fmt: skip
    out: Annotated[Path, typer.Option(help="Output folder: h36m_<protocol>.json and .tsv (the table).")],
    protocol: Annotated[str, typer.Option(help="h36m-p1 (the paper's baseline row) | h36m-p2 | h36m-p3.")] = "h36m-p1",
    cameras: Annotated[Optional[Path], typer.Option(exists=True, dir_okay=False, resolve_path=True, help=_CAMERAS_HELP)] = None,
    engine: Annotated[SearchEngine, typer.Option(help="Search engine (auto: torch on a GPU, else blas).")] = "auto",
    max_frames: Annotated[int, typer.Option(min=0, help="Score only the first this many test frames (0: all).")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Chen & Ramanan style baseline: the 3D of the bank pose nearest to each test frame's true 2D pose; MPJPE per action."""
    import json

    from lcrnet.h36m_protocols import format_table, protocol_table
    from posebank.errors import PosebankError
    from posebank.h36m.baseline import BaselineConfig, nn_baseline
    from posebank.provenance import atomic_path, write_json_atomic

    config = BaselineConfig(data=str(data), bank=str(bank), cameras=str(cameras) if cameras else None, protocol=protocol,
                            engine=engine, max_frames=max_frames)  # fmt: skip
    try:
        predictions = nn_baseline(config, progress=progress_bar(stderr_console(), quiet))
        pred, gt = predictions.pred_3d, predictions.gt_3d
        tables = [protocol_table(protocol, predictions.images, pred, gt)]
        if pred.shape[1] == 17:  # j13 is j17's first 13 joints (same order, same body centre): both of the paper's rows
            tables.append(protocol_table(protocol, predictions.images, pred[:, :13], gt[:, :13]))
    except (PosebankError, ValueError) as err:
        raise fail(err) from None
    text = "\n".join(format_table(t, method="nearest neighbour") for t in tables)
    name = f"h36m_{tables[0].protocol.split('-')[-1]}"
    write_json_atomic(out / f"{name}.json", {"method": "nearest-neighbour baseline", "tables": [t.to_dict() for t in tables],
                                             "config": json.loads(json.dumps(config.__dict__))})  # fmt: skip
    with atomic_path(out / f"{name}.tsv") as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")
    print(text)


def register(app: typer.Typer) -> None:
    annotate_app.command("h36m")(annotate_h36m_command)
    app.command("h36m-baseline")(h36m_baseline_command)
