"""The paper's Human3.6M protocols (sec. 4.1): which subjects train, which frames test.

    P1 (Kostrikov & Gall; the paper's [59]): train S1, S5, S6, S7, S8, S9; test every 64th frame of
       S11 seen by camera 2 (55011271): 928 frames. Reported raw ("Abs.") and rigidly aligned.
    P2 ([11], [40], [43]): train S1, S5, S6, S7, S8; test S9 and S11, all four cameras, every 5th
       frame (about 110k images). Raw and aligned, per action (Table 2).
    P3 (Bogo et al. [25]): P2's subjects; test only camera 3 (58860488), trial 1 of every action,
       after rigid alignment. The paper gives no frame step for P3: every 5th frame, as P2.

Frames are 0-based MoCap frames (50 Hz): "every n-th" keeps frames 0, n, 2n, ... of each sequence.
"Trial 1" of an action is the subject's sequence of that action with the smallest trial number in its
name, a name without a number counting as 0 ('Directions' before 'Directions 1'; S11's 'Phoning 2'
before 'Phoning 3'): the release does not number trials consistently, and this rule is the one
posebank applies (an interpretation, recorded with every result).
Pure functions on names; the metrics are in lcrnet.h36m_protocols.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .names import camera_id, parse_sequence


@dataclass(frozen=True)
class Protocol:
    """One evaluation protocol.

    Attributes:
        name: "h36m-p1" | "h36m-p2" | "h36m-p3".
        train_subjects / test_subjects: subject ids.
        test_cameras: camera ids tested; () = all four.
        test_every: keep every n-th frame of a tested sequence.
        first_trial_only: test only trial 1 of each action (module docstring).
        metrics: the columns the paper reports: ("raw", "aligned") or ("aligned",).
        expected_test_frames: the paper's count of test frames, where it gives one.
    """

    name: str
    train_subjects: tuple[str, ...]
    test_subjects: tuple[str, ...]
    test_cameras: tuple[str, ...]
    test_every: int
    first_trial_only: bool
    metrics: tuple[str, ...]
    expected_test_frames: int | None = None


def _protocols() -> dict[str, Protocol]:
    p2_train = ("S1", "S5", "S6", "S7", "S8")
    return {
        "h36m-p1": Protocol("h36m-p1", p2_train + ("S9",), ("S11",), (camera_id(2),), 64, False, ("raw", "aligned"), 928),
        "h36m-p2": Protocol("h36m-p2", p2_train, ("S9", "S11"), (), 5, False, ("raw", "aligned")),
        "h36m-p3": Protocol("h36m-p3", p2_train, ("S9", "S11"), (camera_id(3),), 5, True, ("aligned",)),
    }


PROTOCOL_NAMES: tuple[str, ...] = ("h36m-p1", "h36m-p2", "h36m-p3")


def get_protocol(name: str) -> Protocol:
    """The protocol called `name` ("h36m-p1", or just "p1")."""
    key = name.lower() if name.lower().startswith("h36m-") else f"h36m-{name.lower()}"
    try:
        return _protocols()[key]
    except KeyError:
        raise ValueError(f"unknown protocol {name!r}; choose from {', '.join(PROTOCOL_NAMES)}") from None


def first_trials(sequences: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """The (subject, sequence) pairs that are trial 1 of their action (module docstring)."""
    best: dict[tuple[str, str], tuple[int, str]] = {}
    for subject, sequence in sequences:
        parsed = parse_sequence(sequence)
        key = (subject, parsed.action)
        candidate = (parsed.trial, sequence)
        if key not in best or candidate < best[key]:
            best[key] = candidate
    return {(subject, seq) for (subject, _), (_, seq) in best.items()}


def is_test_sequence(protocol: Protocol, subject: str, sequence: str, camera: str, trial_one: set[tuple[str, str]]) -> bool:
    """The (subject, sequence, camera) is part of the protocol's test set (before the frame step)."""
    if subject not in protocol.test_subjects:
        return False
    if protocol.test_cameras and camera not in protocol.test_cameras:
        return False
    return not protocol.first_trial_only or (subject, sequence) in trial_one


def split_of_frames(
    protocol: Protocol, subject: str, sequence: str, camera: str, frames: npt.NDArray[np.integer],
    trial_one: set[tuple[str, str]], train_every: int,
) -> npt.NDArray[np.object_]:  # fmt: skip
    """(T,) "train" | "test" | None for each 0-based frame of one (sequence, camera).

    Test frames follow the protocol exactly; training frames of the training subjects are every
    `train_every`-th frame (the paper subsamples too; 5 as P2's test step). Other frames are None.
    """
    frames = np.asarray(frames)
    out = np.full(len(frames), None, dtype=object)
    if is_test_sequence(protocol, subject, sequence, camera, trial_one):
        out[frames % protocol.test_every == 0] = "test"
    elif subject in protocol.train_subjects:
        out[frames % max(1, train_every) == 0] = "train"
    return out
