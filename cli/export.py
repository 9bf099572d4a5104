"""`posebank export`: annotation shards -> COCO keypoints JSON, mmpose-style JSON or a HumanData-like .npz.

cli/main.py adds the command with `register(app)`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .console import fail


def export_command(
    annotations: Annotated[list[Path], typer.Argument(exists=True, resolve_path=True,
                                                      help="Annotation folders (annotate / synth --out) or shard files.")],  # fmt: skip
    format: Annotated[str, typer.Option("--format", help="coco (person keypoints JSON) | mmpose (metainfo + data_list JSON) | npz (HumanData-like arrays).")],  # noqa: A002
    out: Annotated[Path, typer.Option(help="The file to write (replaced atomically).")],
    split: Annotated[Optional[str], typer.Option(help="Export the people of this split only (default: all).")] = None,
) -> None:
    """Export annotation shards for other toolkits: 2D keypoints (annotated, occluded, completed), the
    pseudo-3D pose, boxes and source ids, with the skeleton (names, bones, flip pairs) and provenance."""
    from posebank.errors import PosebankError
    from posebank.export import ExportConfig, export_annotations

    config = ExportConfig(annotations=tuple(str(a) for a in annotations), format=format, out=str(out), split=split)
    try:
        report = export_annotations(config)
    except (PosebankError, ValueError) as err:
        raise fail(err) from None
    print(f"{report.format}: {report.people} people in {report.images} images -> {report.out}")


def register(app: typer.Typer) -> None:
    """Add the `export` command to the `posebank` app."""
    app.command("export")(export_command)
