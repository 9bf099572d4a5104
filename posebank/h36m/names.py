"""Human3.6M naming: subjects, camera ids, sequence names -> actions and trials, image paths.

Pure string functions; the tables (camera order, actions, aliases) come from manifests/h36m.toml.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

from ..dataset_manifest import DatasetManifest, load_dataset_manifest

FPS = 50.0  # MoCap and video frame rate
_TRIAL = re.compile(r"^(?P<action>[A-Za-z]+?)(?:[ _](?P<trial>\d+))?$")
# mmpose image names: <S>/<S>_<Seq>.<camera>/<S>_<Seq>.<camera>_<frame+1:06d>.jpg
_IMAGE = re.compile(r"^(?:.*/)?(?P<subject>S\d+)_(?P<sequence>.+)\.(?P<camera>\d{8})_(?P<number>\d+)\.\w+$")


@lru_cache(maxsize=1)
def manifest() -> DatasetManifest:
    """manifests/h36m.toml."""
    return load_dataset_manifest("h36m")


def camera_ids() -> tuple[str, ...]:
    """The four camera ids in the dataset's order (camera 1 .. camera 4)."""
    cams = manifest().raw["cameras"]
    return tuple(sorted(cams, key=lambda c: cams[c]["index"]))


def camera_id(index: int) -> str:
    """The id of "camera <index>" (1-based, the protocols' numbering)."""
    ids = camera_ids()
    if not 1 <= index <= len(ids):
        raise ValueError(f"camera index must be 1..{len(ids)}, got {index}")
    return ids[index - 1]


def image_size(camera: str) -> tuple[int, int]:
    """(width, height) px of the videos of a camera; (-1, -1) for an unknown camera."""
    entry = manifest().raw["cameras"].get(camera)
    return (int(entry["width"]), int(entry["height"])) if entry else (-1, -1)


def joint_names(layout: str) -> tuple[str, ...]:
    """Joint names of a file layout: "official" (32 joints) or "mmpose" (17, also VideoPose3D's subset)."""
    return tuple(manifest().raw["layouts"][layout]["joint_names"])


def actions() -> tuple[str, ...]:
    """The 15 actions in the paper's table order."""
    return tuple(manifest().raw["actions"]["order"])


def action_abbreviations() -> dict[str, str]:
    """Action -> the paper's Table 2 column header."""
    a = manifest().raw["actions"]
    return dict(zip(a["order"], a["abbreviations"]))


class SequenceName(NamedTuple):
    action: str  # one of actions()
    trial: int  # the number in the name; 0 when the name has none


def parse_sequence(name: str) -> SequenceName:
    """'Walking 1' -> (Walking, 1); 'TakingPhoto' -> (Photo, 0); mmpose's 'WalkDog_1' -> (WalkDog, 1).

    Raises:
        ValueError: a name that is not one of the 15 actions (with an optional trial number).
    """
    m = _TRIAL.match(name.strip())
    raw_action = m.group("action") if m else ""
    action = manifest().raw["actions"]["aliases"].get(raw_action, raw_action)
    if not m or action not in actions():
        raise ValueError(f"{name!r} is not a Human3.6M sequence name ('<Action>' or '<Action> <N>')")
    return SequenceName(action, int(m.group("trial") or 0))


def official_sequence(name: str) -> str:
    """A sequence name as the official files spell it: mmpose's 'Walking_1' -> 'Walking 1'."""
    return name.strip().replace("_", " ")


def image_path(subject: str, sequence: str, camera: str, frame: int) -> str:
    """The image of a frame, relative to the images root, in mmpose's layout (frame 0-based, file names 1-based).

    'S9', 'Walking 1', '54138969', 0 -> 'S9/S9_Walking_1.54138969/S9_Walking_1.54138969_000001.jpg'.
    """
    stem = f"{subject}_{sequence.replace(' ', '_')}.{camera}"
    return f"{subject}/{stem}/{stem}_{frame + 1:06d}.jpg"


class ImageKey(NamedTuple):
    subject: str
    sequence: str  # official spelling ('Walking 1')
    camera: str
    frame: int  # 0-based MoCap frame


def parse_image_path(path: str) -> ImageKey:
    """Inverse of image_path (also accepts a leading folder such as 'images/').

    Raises:
        ValueError: a path not in mmpose's layout.
    """
    m = _IMAGE.match(path.replace("\\", "/"))
    if not m or int(m.group("number")) < 1:
        raise ValueError(f"{path!r} is not a Human3.6M image path '<S>/<S>_<Seq>.<camera>/<S>_<Seq>.<camera>_<N>.jpg'")
    return ImageKey(m.group("subject"), official_sequence(m.group("sequence")), m.group("camera"), int(m.group("number")) - 1)
