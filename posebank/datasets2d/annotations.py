"""The common output of the 2D dataset readers: people with their source 2D joints, as arrays.

Why this module exists: MPII (three file layouts), LSP (two) and COCO disagree on joint order, on how a
missing joint is written ((0, 0), (-1, -1), a flag, a placeholder) and on what their visibility flag
means. Every reader turns its file into one `PersonAnnotations`, where these questions have a single
answer: a joint is *annotated* when the source gives it coordinates (occluded or not), and *occluded*
only when the source's own flag says so. Mapping onto the canonical skeleton is not done here
(posebank.datasets2d.canonical2d does it, by name, through the manifests).

A struct of arrays rather than one object per person: COCO train has ~260k people and MPII ~40k, and
the consumers (masked search, shards) want arrays anyway. `person_at(i)` gives one person as a record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

DATASETS = ("mpii", "lsp", "coco")
UNKNOWN_SIZE = -1  # image_width / image_height when the source does not say and no image was read


@dataclass(frozen=True, eq=False)
class PersonAnnotations:
    """The people of one annotation file, with their joints in the source's own order.

    Coordinates are pixels of the original image, origin at the top-left, in the source's own pixel
    convention (MPII and LSP come from MATLAB and are 1-based: the centre of the top-left pixel is
    (1, 1); COCO's is (0, 0)); nothing is shifted, scaled or cropped here.

    Attributes:
        dataset: "mpii", "lsp" or "coco": also the name of the manifest holding the joint table.
        source_format: the file layout read ("mpii_release_mat", "mpii_json", "mpii_h5", "lsp_mat",
            "lspet_mat", "coco_json").
        path: the annotation file read.
        joint_names: (Js,) the source's joint names in source order (from the manifest's joint_order).
        occlusion_flag: True when the source has an occlusion flag, so that `source_occluded` carries
            information; False when it has none (all False then means "unknown", not "visible").
        split: (N,) str, "train", "val", "test", ... or "unknown" (names read from file names are
            normalised: valid -> val, train2017 -> train; a split given by the caller is kept as given).
        image: (N,) str, the image path relative to the dataset's images root.
        image_width: (N,) int32 pixels, -1 when unknown.
        image_height: (N,) int32 pixels, -1 when unknown.
        person: (N,) int32, the person's index within its image in the source (MPII annorect index,
            COCO order of the annotations of that image, 0 for LSP).
        record: (N,) int64, the person's record in the source: COCO annotation id; MPII release and h5:
            the 0-based annolist (image) index, so (record, person) names the same person in both; MPII
            JSON: row; LSP: 0-based image index. For provenance and error messages.
        source_pose_2d: (N, Js, 2) float64 px (x, y); NaN where the joint is not annotated (whatever
            placeholder the file used).
        source_annotated: (N, Js) bool, the source gives the joint coordinates.
        source_occluded: (N, Js) bool, the source marks the joint occluded; always False where not
            annotated or where the source has no flag.
        head_box: (N, 4) float64 px (x0, y0, x1, y1) of the MPII head rectangle; NaN when unknown.
        head_size: (N,) float64 px, the PCKh normaliser 0.6 * head-box diagonal (MPII evaluation
            convention; the h5 layout stores it as `normalize`); NaN when unknown.
        extras: per-reader metadata, each (N, ...) (e.g. MPII objpos/scale, COCO bbox/iscrowd); the
            readers' docstrings list their keys.
    """

    dataset: str
    source_format: str
    path: str
    joint_names: tuple[str, ...]
    occlusion_flag: bool
    split: npt.NDArray[np.str_]
    image: npt.NDArray[np.str_]
    image_width: npt.NDArray[np.int32]
    image_height: npt.NDArray[np.int32]
    person: npt.NDArray[np.int32]
    record: npt.NDArray[np.int64]
    source_pose_2d: npt.NDArray[np.float64]
    source_annotated: npt.NDArray[np.bool_]
    source_occluded: npt.NDArray[np.bool_]
    head_box: npt.NDArray[np.float64]
    head_size: npt.NDArray[np.float64]
    extras: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n, js = len(self.image), len(self.joint_names)
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {DATASETS}, got {self.dataset!r}")
        expected = {
            "split": (n,), "image": (n,), "image_width": (n,), "image_height": (n,), "person": (n,),
            "record": (n,), "source_pose_2d": (n, js, 2), "source_annotated": (n, js),
            "source_occluded": (n, js), "head_box": (n, 4), "head_size": (n,),
        }  # fmt: skip
        for name, shape in expected.items():
            got = getattr(self, name).shape
            if got != shape:
                raise ValueError(f"PersonAnnotations.{name} has shape {got}, expected {shape}")
        for name, value in self.extras.items():
            if len(value) != n:
                raise ValueError(f"PersonAnnotations.extras[{name!r}] has {len(value)} rows, expected {n}")
        if (self.source_occluded & ~self.source_annotated).any():
            raise ValueError("source_occluded is set on a joint that is not annotated")
        object.__setattr__(self, "extras", MappingProxyType(dict(self.extras)))

    def __len__(self) -> int:
        return len(self.image)

    def source_ids(self) -> dict[str, npt.NDArray[np.int64]]:
        """The ids that join each person back to the source file, -1 where the source has none.

        Returns:
            row: (N,) the person's 0-based position among the file's people in reading order (MPII JSON:
                the record; h5: the row; COCO: among the person annotations; LSP: the image index).
            image_id: (N,) the source's id of the image: COCO images[].id, MPII annolist index (release
                .mat; h5 `index`), LSP/LSPET 0-based image index; -1 for MPII JSON and h5 without index.
            annotation_id: (N,) COCO annotations[].id; -1 elsewhere (MPII names a person by
                (image_id, person), LSP by its image).
        """
        n = len(self)
        image_id = self.extras.get("image_id")
        return {
            "row": np.arange(n, dtype=np.int64),
            "image_id": np.full(n, -1, np.int64) if image_id is None else np.asarray(image_id, np.int64),
            "annotation_id": self.record.astype(np.int64) if self.dataset == "coco" else np.full(n, -1, np.int64),
        }

    @property
    def num_annotated(self) -> npt.NDArray[np.int64]:
        """(N,) number of annotated source joints per person (0 for people kept without joints)."""
        return self.source_annotated.sum(axis=1)

    def subset(self, index: npt.ArrayLike) -> PersonAnnotations:
        """The people selected by `index` (integer indices or a (N,) boolean mask), same file and joints."""
        idx = np.asarray(index)
        arrays = {
            name: getattr(self, name)[idx]
            for name in ("split", "image", "image_width", "image_height", "person", "record", "source_pose_2d",
                         "source_annotated", "source_occluded", "head_box", "head_size")
        }  # fmt: skip
        return PersonAnnotations(
            dataset=self.dataset, source_format=self.source_format, path=self.path,
            joint_names=self.joint_names, occlusion_flag=self.occlusion_flag,
            extras={k: v[idx] for k, v in self.extras.items()}, **arrays,
        )  # fmt: skip

    def person_at(self, i: int) -> Person:
        """Person `i` as one record, with None for what the source does not give."""
        box = self.head_box[i]
        return Person(
            dataset=self.dataset,
            split=str(self.split[i]),
            image=str(self.image[i]),
            image_width=_optional_int(self.image_width[i]),
            image_height=_optional_int(self.image_height[i]),
            person=int(self.person[i]),
            record=int(self.record[i]),
            joint_names=self.joint_names,
            source_pose_2d=self.source_pose_2d[i],
            source_annotated=self.source_annotated[i],
            source_occluded=self.source_occluded[i],
            head_box=None if np.isnan(box).any() else tuple(float(v) for v in box),
            head_size=None if np.isnan(self.head_size[i]) else float(self.head_size[i]),
        )


@dataclass(frozen=True, eq=False)
class Person:
    """One person of a `PersonAnnotations` (same fields and units, one row; None = unknown)."""

    dataset: str
    split: str
    image: str
    image_width: int | None
    image_height: int | None
    person: int
    record: int
    joint_names: tuple[str, ...]
    source_pose_2d: npt.NDArray[np.float64]
    source_annotated: npt.NDArray[np.bool_]
    source_occluded: npt.NDArray[np.bool_]
    head_box: tuple[float, float, float, float] | None
    head_size: float | None


def _optional_int(value: np.integer) -> int | None:
    return None if int(value) == UNKNOWN_SIZE else int(value)


def build_annotations(
    *,
    dataset: str,
    source_format: str,
    path: str,
    joint_names: tuple[str, ...],
    occlusion_flag: bool,
    split: npt.ArrayLike,
    image: npt.ArrayLike,
    person: npt.ArrayLike,
    record: npt.ArrayLike,
    pose_2d: npt.ArrayLike,
    annotated: npt.ArrayLike,
    occluded: npt.ArrayLike,
    image_size: tuple[npt.ArrayLike, npt.ArrayLike] | None = None,
    head_box: npt.ArrayLike | None = None,
    head_size: npt.ArrayLike | None = None,
    extras: Mapping[str, np.ndarray] | None = None,
) -> PersonAnnotations:
    """Assemble a `PersonAnnotations` from reader arrays, with the dtypes and NaN rules applied once.

    Args:
        pose_2d: (N, Js, 2) px in source order; values of joints that are not annotated are ignored.
        annotated, occluded: (N, Js) bool; `occluded` is cleared where not annotated.
        image_size: (width (N,), height (N,)) px, -1 for unknown; None = all unknown.
        head_box: (N, 4) px or None; head_size: (N,) px or None (NaN = unknown).
        The other arguments are the fields of `PersonAnnotations`; split may be one string for all.
    """
    image_arr = np.asarray(image, dtype=str).reshape(-1)
    n = len(image_arr)
    annotated_arr = np.asarray(annotated, dtype=bool).reshape(n, len(joint_names))
    pose = np.asarray(pose_2d, dtype=np.float64).reshape(n, len(joint_names), 2).copy()
    pose[~annotated_arr] = np.nan
    split_arr = np.asarray(split, dtype=str)
    if split_arr.ndim == 0:
        split_arr = np.full(n, str(split_arr))
    if image_size is None:
        width = height = np.full(n, UNKNOWN_SIZE, dtype=np.int32)
    else:
        width, height = (np.asarray(v, dtype=np.int32).reshape(n) for v in image_size)
    return PersonAnnotations(
        dataset=dataset,
        source_format=source_format,
        path=path,
        joint_names=tuple(joint_names),
        occlusion_flag=occlusion_flag,
        split=split_arr,
        image=image_arr,
        image_width=width,
        image_height=height,
        person=np.asarray(person, dtype=np.int32).reshape(n),
        record=np.asarray(record, dtype=np.int64).reshape(n),
        source_pose_2d=pose,
        source_annotated=annotated_arr,
        source_occluded=np.asarray(occluded, dtype=bool).reshape(n, len(joint_names)) & annotated_arr,
        head_box=np.full((n, 4), np.nan) if head_box is None else np.asarray(head_box, np.float64).reshape(n, 4),
        head_size=np.full(n, np.nan) if head_size is None else np.asarray(head_size, np.float64).reshape(n),
        extras=dict(extras or {}),
    )
