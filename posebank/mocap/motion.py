"""The one container every MoCap reader returns.

Readers parse a file into joint positions in metres and nothing else: they never resample,
centre, orient or project. Everything downstream (the canonical mapping, the bank) reads this.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Motion:
    """Joint positions of one MoCap sequence in its source's own joint set.

    Attributes:
        joint_names: (J,) names as the source spells them (ASF bone names, BVH joint names, ...).
            For ASF/AMC a bone's joint is the bone's *end*; "root" is the root position.
        parents: (J,) index of each joint's parent, -1 for the root.
        positions_m: (T, J, 3) float64 world positions in metres, right-handed, +Y up.
        fps: frames per second of `positions_m`.
        source: "cmu" | "hdm05" | "poseprior" | "bvh".
        subject: subject / actor id ("09", "bd", ...).
        sequence: sequence / take name ("09_12", "HDM_bd_depositFloorR_001_120", ...).
        path: the file it was read from (for error messages and provenance).
        frame_numbers: (T,) the source's own frame numbers (AMC counts from 1); defaults to 0..T-1.
    """

    joint_names: tuple[str, ...]
    parents: tuple[int, ...]
    positions_m: npt.NDArray[np.float64]
    fps: float
    source: str
    subject: str
    sequence: str
    path: str = ""
    frame_numbers: npt.NDArray[np.int64] | None = None

    def __post_init__(self) -> None:
        if self.positions_m.ndim != 3 or self.positions_m.shape[1:] != (len(self.joint_names), 3):
            raise ValueError(
                f"positions_m must be (T, {len(self.joint_names)}, 3), got {self.positions_m.shape}"
            )
        if len(self.parents) != len(self.joint_names):
            raise ValueError(f"{len(self.parents)} parents for {len(self.joint_names)} joints")
        if self.frame_numbers is None:
            object.__setattr__(self, "frame_numbers", np.arange(len(self.positions_m), dtype=np.int64))
        elif len(self.frame_numbers) != len(self.positions_m):
            raise ValueError(f"{len(self.frame_numbers)} frame numbers for {len(self.positions_m)} frames")

    @property
    def num_frames(self) -> int:
        return int(self.positions_m.shape[0])

    def joint_index(self, name: str) -> int:
        """Index of a joint by name; KeyError naming the known joints when absent."""
        try:
            return self.joint_names.index(name)
        except ValueError:
            raise KeyError(f"joint {name!r} not in {self.sequence} ({', '.join(self.joint_names)})") from None
