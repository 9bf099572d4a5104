"""Image sizes from image file headers, for the datasets whose annotations do not record them (MPII, LSP).

Only the header is read (PIL opens images lazily), once per distinct image. PIL is optional: without it,
or without an images root, sizes stay unknown (-1) rather than guessed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from .annotations import UNKNOWN_SIZE

LOG = logging.getLogger(__name__)


def read_image_sizes(
    images_root: Path | None, images: Sequence[str] | npt.NDArray[np.str_]
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]:
    """Width and height in pixels of each image, from its file header.

    Args:
        images_root: folder the image paths are relative to; None = do not read any image.
        images: (N,) image paths relative to `images_root` (repeats are read once).

    Returns:
        (width (N,), height (N,)) int32 px; -1 where unknown (no root, no PIL, missing or unreadable file:
        logged as one warning with a count, because a partial images folder is a normal situation).
    """
    n = len(images)
    width = np.full(n, UNKNOWN_SIZE, dtype=np.int32)
    height = np.full(n, UNKNOWN_SIZE, dtype=np.int32)
    if images_root is None or n == 0:
        return width, height
    try:
        from PIL import Image
    except ImportError:
        LOG.warning("Pillow is not installed: image sizes stay unknown")
        return width, height
    names, inverse = np.unique(np.asarray(images, dtype=str), return_inverse=True)
    sizes = np.full((len(names), 2), UNKNOWN_SIZE, dtype=np.int32)
    failed = 0
    for k, name in enumerate(names):
        try:
            with Image.open(Path(images_root) / str(name)) as im:
                sizes[k] = im.size  # (width, height); decoding is deferred, so only the header is read
        except (OSError, ValueError):
            failed += 1
    if failed:
        LOG.warning("%d of %d images under %s could not be read: their sizes stay unknown", failed, len(names),
                    images_root)  # fmt: skip
    return sizes[inverse, 0], sizes[inverse, 1]
