"""`posebank export`: annotation shards -> files other toolkits read (COCO keypoints JSON, mmpose-style
JSON, a HumanData-like .npz). One module per format; `people` reads the shards once for all of them.

Every output carries the skeleton (joint names, bones, left/right flip pairs), the units and frames, and
the provenance (inputs with their sha256, the posebank version), and is written atomically.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from .coco import write_coco
from .mmpose import write_mmpose
from .npz import write_npz
from .people import provenance, read_people

WRITERS = {"coco": write_coco, "mmpose": write_mmpose, "npz": write_npz}
FORMATS = tuple(WRITERS)


@dataclass(frozen=True)
class ExportConfig:
    """Configuration of `posebank export`."""

    annotations: tuple[str, ...] = ()  # annotation output folders (annotate / synth --out), or shard files
    format: str = "coco"  # coco | mmpose | npz
    out: str = ""  # the file to write
    split: str | None = None  # export rows of this split only (None: all)


@dataclass(frozen=True)
class ExportReport:
    out: Path
    people: int
    images: int
    format: str


def export_annotations(config: ExportConfig) -> ExportReport:
    """Read the shards of `config.annotations` and write them in `config.format` to `config.out`.

    Raises:
        ValueError: an unknown format or no input.
        InputError: --out is a folder.
        InputError: shards that do not read or verify, different skeletons, no people (of the split).
    """
    if config.format not in WRITERS:
        raise ValueError(f"unknown format {config.format!r}; choose from {', '.join(FORMATS)}")
    if not config.annotations or not config.out:
        raise ValueError("export needs annotation folders and an output file")
    if Path(config.out).is_dir():
        raise InputError(config.out, "is a folder: --out names the file to write (e.g. labels.json)")
    people, skeleton, inputs = read_people(list(config.annotations), split=config.split)
    WRITERS[config.format](config.out, people, skeleton, provenance(inputs, config.format, config.split))
    images = len(set(zip(people.dataset.tolist(), people.image.tolist())))
    return ExportReport(Path(config.out), len(people), images, config.format)


__all__ = ["FORMATS", "ExportConfig", "ExportReport", "export_annotations"]
