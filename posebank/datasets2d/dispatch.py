"""Pick the 2D annotation reader from the dataset name and the file suffix (one dict, no registry)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import InputError
from .annotations import PersonAnnotations
from .coco import read_coco
from .lsp import read_lsp
from .mpii import read_mpii_h5, read_mpii_json
from .mpii_release import read_mpii_release

READERS: dict[tuple[str, str], Callable[..., PersonAnnotations]] = {
    ("mpii", ".mat"): read_mpii_release,
    ("mpii", ".json"): read_mpii_json,
    ("mpii", ".h5"): read_mpii_h5,
    ("mpii", ".hdf5"): read_mpii_h5,
    ("lsp", ".mat"): read_lsp,
    ("coco", ".json"): read_coco,
}


def read_annotations(dataset: str, path: str | Path, **options: Any) -> PersonAnnotations:
    """Read a 2D pose annotation file with the reader for (`dataset`, suffix of `path`).

    Args:
        dataset: "mpii", "lsp" or "coco".
        path: the annotation file: MPII .mat (official release) / .json (HRNet-style) / .h5 (Stacked
            Hourglass); LSP .mat; COCO .json.
        options: passed to the reader (e.g. split=, images_root=, image_list=, visibility_inverted=).

    Raises:
        InputError: no reader for this dataset and suffix, or the reader's own errors.
        TypeError: an option the chosen reader does not take.
    """
    path = Path(path)
    reader = READERS.get((dataset, path.suffix.lower()))
    if reader is None:
        known = ", ".join(f"{d} {s}" for d, s in READERS)
        raise InputError(path, f"no reader for dataset {dataset!r} with suffix {path.suffix!r} (known: {known})")
    return reader(path, **options)
