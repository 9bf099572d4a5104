"""Map 2D annotations from the source joint order onto the canonical skeleton (j13/j17), by name.

The name tables live in the manifests (manifests/{mpii,lsp,coco}.toml, [joints]); this module only
applies them. Each canonical joint is the mean of its named source joints (skeleton.mapping_matrix), and
the visibility rules follow the Annotations contract of docs/design.md:

- visible: every source joint it needs is annotated (MPII head = midpoint of upper_neck and head_top is
  visible only when both are). A canonical joint with no source joints (COCO neck) is never visible.
- occluded: it is visible and any source joint it needs is marked occluded by the source.
- Exception, the manifest's [partial_mean] table: such a joint (COCO head) is the mean of its parts that
  ARE annotated, visible when at least the given number of parts are, and occluded only when every part
  it uses is occluded.

Pixel coordinates are kept in the source's convention (see PersonAnnotations); nothing is normalised.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..dataset_manifest import load_dataset_manifest
from ..skeleton import get_skeleton, mapping_matrix
from .annotations import PersonAnnotations


@dataclass(frozen=True, eq=False)
class CanonicalPoses2D:
    """People's 2D joints on a canonical skeleton, row for row with their `PersonAnnotations`.

    Attributes:
        skeleton: "j13" or "j17".
        joint_names: (J,) canonical joint names.
        pose_2d: (N, J, 2) float64 px in the source's pixel convention; NaN where not visible.
        visible: (N, J) bool, the joint has coordinates from the annotation (the search's query mask).
        occluded: (N, J) bool, the source marks it occluded (never set where not visible).
    """

    skeleton: str
    joint_names: tuple[str, ...]
    pose_2d: npt.NDArray[np.float64]
    visible: npt.NDArray[np.bool_]
    occluded: npt.NDArray[np.bool_]


def to_canonical_2d(annotations: PersonAnnotations, skeleton_name: str = "j13") -> CanonicalPoses2D:
    """Map every person of `annotations` onto the canonical skeleton through its dataset's manifest.

    Args:
        annotations: N people in source joint order (Js joints).
        skeleton_name: "j13" or "j17".

    Returns:
        CanonicalPoses2D with (N, J, 2) poses and (N, J) visible / occluded masks.

    Raises:
        MappingError: the manifest's table names a joint the source lacks, or misses a canonical joint.
    """
    skeleton = get_skeleton(skeleton_name)
    manifest = load_dataset_manifest(annotations.dataset)
    where = f"manifests/{annotations.dataset}.toml"
    weights = mapping_matrix(annotations.joint_names, manifest.joints, skeleton, path=where)  # (J, Js)
    needed = weights > 0
    annotated = annotations.source_annotated
    occluded_src = annotations.source_occluded & annotated
    # Zero the coordinates of joints that are not annotated so that the matrix products stay finite; the
    # masks below decide which canonical joints are real.
    xy = np.where(annotated[..., None], annotations.source_pose_2d, 0.0)

    needed_f = needed.astype(np.float64)
    num_needed = needed.sum(axis=1)  # (J,)
    num_annotated = annotated.astype(np.float64) @ needed_f.T  # (N, J) annotated parts per canonical joint
    num_occluded = occluded_src.astype(np.float64) @ needed_f.T  # (N, J) occluded parts
    pose = np.einsum("js,nsd->njd", weights, xy)
    visible = (num_annotated == num_needed) & (num_needed > 0)
    occluded = visible & (num_occluded > 0)

    for name, min_parts in manifest.raw.get("partial_mean", {}).items():
        if name not in skeleton.joint_names:
            continue  # e.g. a j17-only joint while mapping to j13
        j = skeleton.index(name)
        count = num_annotated[:, j]
        total = np.einsum("s,nsd->nd", needed_f[j], xy)  # sum of the annotated parts' coordinates
        with np.errstate(invalid="ignore", divide="ignore"):
            pose[:, j] = total / count[:, None]
        visible[:, j] = count >= max(int(min_parts), 1)
        occluded[:, j] = visible[:, j] & (num_occluded[:, j] == count)

    pose[~visible] = np.nan
    return CanonicalPoses2D(
        skeleton=skeleton.name,
        joint_names=skeleton.joint_names,
        pose_2d=pose,
        visible=visible,
        occluded=occluded,
    )
