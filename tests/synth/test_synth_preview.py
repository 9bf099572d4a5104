"""The synth contact sheet in the shared drawing style: side colours, joint markers, a legend strip."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from posebank.drawing_style import LEFT, RIGHT, side_rgb
from posebank.synth import SynthConfig, synthesize
from posebank.drawing_style import pil_legend
from posebank.synth.preview import write_contact_sheet


def _has_colour(pixels: np.ndarray, rgb: tuple[int, int, int], tol: int = 40) -> bool:
    return bool((np.abs(pixels.astype(int) - np.array(rgb)).max(axis=-1) <= tol).any())


def test_contact_sheet_uses_the_side_colours_and_has_its_legend(demo_bank: Path, tmp_path: Path) -> None:
    out = tmp_path / "synth"
    synthesize(SynthConfig(images=4, size=(128, 128), people=(1, 2), seed=5, images_per_shard=4, workers=0, image_format="png"),
               demo_bank, out)  # fmt: skip
    path = write_contact_sheet(out, count=4, tile=128)
    with Image.open(path) as im:
        sheet = np.asarray(im.convert("RGB"))
    legend_px = pil_legend(2 * 128).height
    assert legend_px >= 40  # 256 px cannot hold the six items on one row: they wrap, none is cut
    assert sheet.shape == (2 * 128 + legend_px, 2 * 128, 3)  # 2 x 2 tiles and the legend under them
    tiles, legend = sheet[: 2 * 128], sheet[2 * 128 :]
    for side in (RIGHT, LEFT):
        assert _has_colour(tiles, side_rgb(side), tol=10), side  # bones drawn in their side's colour
        assert _has_colour(legend, side_rgb(side), tol=10), side
    assert (legend < 100).any()  # the legend's words


def test_workers_0_renders_in_this_process_with_the_same_bytes(demo_bank: Path, tmp_path: Path) -> None:
    """--workers 0 (every command's "all in this process") gives the files of a process pool."""
    config = SynthConfig(images=3, size=(96, 96), people=(1, 2), seed=2, images_per_shard=2, workers=0)
    synthesize(config, demo_bank, tmp_path / "w0")
    synthesize(replace(config, workers=2), demo_bank, tmp_path / "w2")
    files = sorted(p.relative_to(tmp_path / "w0") for p in (tmp_path / "w0").rglob("*") if p.is_file()
                   and p.name not in ("manifest.json", ".job.json"))  # fmt: skip
    assert len(files) == 3 + 2  # images and shards
    for f in files:
        assert (tmp_path / "w0" / f).read_bytes() == (tmp_path / "w2" / f).read_bytes(), f
