"""Readers of 2D human pose annotations (MPII, LSP, COCO) and their name-based mapping onto j13/j17.

Each reader returns a `PersonAnnotations` (source joint order, annotated/occluded masks, image and
head-box metadata); `to_canonical_2d` maps it onto the canonical skeleton through the dataset's manifest.
"""

from .annotations import Person, PersonAnnotations
from .canonical2d import CanonicalPoses2D, to_canonical_2d
from .coco import read_coco
from .dispatch import read_annotations
from .lsp import read_lsp
from .mpii import read_mpii_h5, read_mpii_json
from .mpii_release import read_mpii_release

__all__ = [
    "CanonicalPoses2D",
    "Person",
    "PersonAnnotations",
    "read_annotations",
    "read_coco",
    "read_lsp",
    "read_mpii_h5",
    "read_mpii_json",
    "read_mpii_release",
    "to_canonical_2d",
]
