"""The configuration of `posebank synth`: one frozen dataclass, saved with every output."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config import to_dict

IMAGE_FORMATS: tuple[str, ...] = ("jpg", "png")


@dataclass(frozen=True)
class SynthConfig:
    """How synthetic multi-person images are drawn from bank poses (LCR-Net++ sec. 4.1-4.2).

    Scales are px per metre for an image 512 px tall and grow with the image height, so one config
    frames people alike at any `size`.
    """

    images: int = 1000  # images to render
    size: tuple[int, int] = (512, 512)  # (width, height) px
    people: tuple[int, int] = (1, 5)  # people per image, uniform in [min, max]
    seed: int = 0  # image i is drawn from the generator seeded by (seed, i): same bank + seed -> same data
    val_fraction: float = 0.1  # share of images in split "val" (a hash of (seed, image), not of the draws)
    scale_range: tuple[float, float] = (60.0, 320.0)  # person scale, px per metre at 512 px height, log-uniform
    focal_px: float = 700.0  # weak perspective: a person drawn at s px/m (512 px height) stands focal_px / s m away
    truncation_prob: float = 0.25  # chance that a person is placed across the image border
    max_overlap: float = 0.5  # a person's box may cover at most this share of a nearer/earlier one (best of tries)
    thickness_range: tuple[float, float] = (0.85, 1.2)  # per-person factor on the limb radii (slim to stout)
    image_format: str = "jpg"  # jpg | png
    jpeg_quality: int = 90  # JPEG quality (1-95); ignored for png
    images_per_shard: int = 1000  # images per annotation shard (and per image sub-folder)
    workers: int = 1  # parallel rendering processes, 0: render in this process (the output does not depend on it)
    version: int = 1  # bump when the same config would draw different images

    def content(self) -> dict[str, Any]:
        """The fields that define the output (all but the worker count), as stored with it."""
        d = to_dict(self)
        d.pop("workers")
        return d

    def job_identity(self) -> dict[str, Any]:
        """What defines each image: `content` but the number of images (image i does not depend on
        how many there are, so a later run may extend an output)."""
        d = self.content()
        d.pop("images")
        return d

    def check(self) -> None:
        """Raise ValueError naming the first out-of-range field."""
        w, h = self.size
        if self.images < 0:
            raise ValueError(f"images must be >= 0, got {self.images}")
        if w < 16 or h < 16:
            raise ValueError(f"size must be at least 16x16 px, got {w}x{h}")
        if not 1 <= self.people[0] <= self.people[1]:
            raise ValueError(f"people must be a range MIN-MAX with 1 <= MIN <= MAX, got {self.people}")
        if not 0.0 <= self.val_fraction <= 1.0:
            raise ValueError(f"val_fraction must be in [0, 1], got {self.val_fraction}")
        if not 0.0 < self.scale_range[0] <= self.scale_range[1]:
            raise ValueError(f"scale_range must be 0 < MIN <= MAX px/m, got {self.scale_range}")
        if not 0.0 < self.thickness_range[0] <= self.thickness_range[1]:
            raise ValueError(f"thickness_range must be 0 < MIN <= MAX, got {self.thickness_range}")
        if not 0.0 <= self.truncation_prob <= 1.0:
            raise ValueError(f"truncation_prob must be in [0, 1], got {self.truncation_prob}")
        if self.focal_px <= 0:
            raise ValueError(f"focal_px must be > 0, got {self.focal_px}")
        if self.image_format not in IMAGE_FORMATS:
            raise ValueError(f"image_format must be one of {', '.join(IMAGE_FORMATS)}, got {self.image_format!r}")
        if not 1 <= self.jpeg_quality <= 95:
            raise ValueError(f"jpeg_quality must be in [1, 95], got {self.jpeg_quality}")
        if self.images_per_shard < 1 or self.workers < 0:
            raise ValueError(f"images_per_shard must be >= 1 and workers >= 0, got {self.images_per_shard}, {self.workers}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
