"""`posebank synth`: render synthetic multi-person images from bank poses, with their annotations.

cli/main.py adds the command with `register(app)`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from .console import DEFAULT_WORKERS, fail, progress_bar, stderr_console, workers_option

N = TypeVar("N", int, float)


def _parse_size(value: str) -> tuple[int, int]:
    w, sep, h = value.lower().partition("x")
    if not sep or not w.strip().isdigit() or not h.strip().isdigit():
        raise typer.BadParameter(f"{value!r}: expected WIDTHxHEIGHT in px, e.g. 512x512", param_hint="--size")
    return int(w), int(h)


def _parse_range(value: str, hint: str, cast: Callable[[str], N]) -> tuple[N, N]:
    lo, sep, hi = value.partition("-")
    try:
        pair = (cast(lo), cast(hi)) if sep else (cast(value), cast(value))
    except ValueError:
        raise typer.BadParameter(f"{value!r}: expected MIN-MAX or a single number", param_hint=hint) from None
    return pair


def synth_command(
    bank: Annotated[
        Path, typer.Option(exists=True, file_okay=False, dir_okay=True, resolve_path=True, help="Bank folder (build-bank output).")
    ],
    out: Annotated[Path, typer.Option(help="Output folder: images/, annotations/part-*.parquet, manifest.json.")],
    images: Annotated[int, typer.Option(min=0, help="Number of images.")] = 1000,
    size: Annotated[str, typer.Option(help="Image size WIDTHxHEIGHT, px.")] = "512x512",
    people: Annotated[str, typer.Option(help="People per image: MIN-MAX (uniform) or N.")] = "1-5",
    seed: Annotated[int, typer.Option(min=0, help="Seed: same bank and seed give the same images and shards.")] = 0,
    val_fraction: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of images in split 'val'.")] = 0.1,
    scale: Annotated[
        str, typer.Option(help="Person scale MIN-MAX in px per metre for a 512 px tall image (grows with --size).")
    ] = "60-320",
    truncation: Annotated[float, typer.Option(min=0.0, max=1.0, help="Chance that a person is cut by the image border.")] = 0.25,
    image_format: Annotated[str, typer.Option("--format", help="Image format: jpg or png.")] = "jpg",
    jpeg_quality: Annotated[int, typer.Option(min=1, max=95, help="JPEG quality.")] = 90,
    images_per_shard: Annotated[int, typer.Option(min=1, help="Images per annotation shard.")] = 1000,
    workers: Annotated[int, workers_option("render images")] = DEFAULT_WORKERS,
    preview: Annotated[bool, typer.Option("--preview", help="Also write preview.png: the first 16 images with their skeletons.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an --out that holds another job's output.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Render synthetic multi-person images from bank poses, with annotation shards.

    Capsule bodies, procedural backgrounds, occlusions and truncation; the shards hold the true 2D,
    visibility, occlusion and 3D of every person.

    Rerunning the same command resumes: images and shards already written are kept.
    """
    from rich.console import Console

    from posebank.errors import PosebankError
    from posebank.synth import SynthConfig, synthesize

    try:
        config = SynthConfig(
            images=images, size=_parse_size(size), people=_parse_range(people, "--people", int), seed=seed,
            val_fraction=val_fraction, scale_range=_parse_range(scale, "--scale", float), truncation_prob=truncation,
            image_format=image_format.lower().replace("jpeg", "jpg"), jpeg_quality=jpeg_quality,
            images_per_shard=images_per_shard, workers=workers,
        )  # fmt: skip
        report = synthesize(
            config, bank, out, overwrite=overwrite, preview=16 if preview else 0,
            progress=progress_bar(stderr_console(), quiet),
        )  # fmt: skip
    except (PosebankError, ValueError, OSError) as err:
        raise fail(err) from None
    console = Console()
    console.print(
        f"synth {report.out}: {report.images} images ({report.images_rendered} rendered, {report.images_reused} kept), "
        f"{report.people} people; splits {report.splits}; shards written {report.shards_written}, "
        f"kept {report.shards_reused}; {report.images_per_second:.1f} images/s; {report.seconds.get('total', 0):.1f} s",
        highlight=False, soft_wrap=True, markup=False,
    )  # fmt: skip
    if report.preview is not None:
        console.print(f"preview: {report.preview}", highlight=False, soft_wrap=True, markup=False)


def register(app: typer.Typer) -> None:
    """Add the `synth` command to the `posebank` app."""
    app.command("synth")(synth_command)
