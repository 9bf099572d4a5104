"""The Chen & Ramanan style nearest-neighbour baseline (paper [29], Table 3: 82.7 mm aligned on P1).

No network: each test frame's TRUE 2D pose is matched against a bank built from the training
subjects' MoCap (masked, normalised matching, eq. 9, all joints visible), and the best match's 3D
pose (body-centred, in its view's camera frame) is the prediction. It measures how far pseudo-3D
by matching gets on Human3.6M, the same matching `posebank annotate` uses for MPII/LSP/COCO.
The predictions are scored by lcrnet.h36m_protocols (MPJPE raw and aligned, per action).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..annotate.matching import gather_matches, search_bank
from ..bank import open_bank
from ..errors import InputError
from ..progress import ProgressFactory, no_progress
from ..search import SearchConfig
from .annotate import frame_rows
from .dataset import camera_sequences, camera_views, open_h36m
from .names import image_path
from .protocols import first_trials, get_protocol, split_of_frames


@dataclass(frozen=True)
class BaselineConfig:
    """Configuration of `posebank h36m-baseline`."""

    data: str = ""  # a Human3.6M copy (the test subjects' frames are read from it)
    bank: str = ""  # a bank of the protocol's training subjects (build-bank --source h36m=... --subjects ...)
    cameras: str | None = None  # mmpose's cameras.pkl (found beside the data when not given)
    protocol: str = "h36m-p1"  # h36m-p1 | h36m-p2 | h36m-p3
    engine: str = "auto"  # search engine (exact engines agree)
    max_frames: int = 0  # score only the first this many test frames (0: all)


@dataclass(frozen=True)
class BaselinePredictions:
    """Test frames with their predictions, in protocol order.

    Attributes:
        images: (N,) image paths (posebank.h36m.names.image_path), which name subject, sequence, camera, frame.
        pred_3d: (N, J, 3) metres, the matched bank pose, body-centred, its view's camera frame.
        gt_3d: (N, J, 3) metres, the true pose, body-centred, the real camera's frame.
        distances: (N,) eq. 9 match distances.
        skeleton: the bank's joint set.
    """

    images: list[str]
    pred_3d: npt.NDArray[np.float64]
    gt_3d: npt.NDArray[np.float64]
    distances: npt.NDArray[np.float32]
    skeleton: str


def nn_baseline(config: BaselineConfig, *, progress: ProgressFactory | None = None) -> BaselinePredictions:
    """Predict the 3D pose of every test frame of the protocol by nearest-neighbour matching of its 2D pose.

    Raises:
        InputError: the bank holds a test subject (it must be built from training subjects only), the data
            has no test frame of the protocol, or unreadable inputs.
    """
    progress = progress or no_progress
    protocol = get_protocol(config.protocol)
    bank = open_bank(config.bank)
    in_bank = {i.get("subject") for i in bank.manifest.get("inputs", []) if i.get("source") == "h36m"}
    leaked = sorted(in_bank & set(protocol.test_subjects))
    if leaked:
        raise InputError(bank.root, f"the bank holds test subject(s) {', '.join(leaked)} of {protocol.name}: build it with "
                                    f"--subjects {','.join(protocol.train_subjects)}")  # fmt: skip
    skeleton = bank.skeleton
    data = open_h36m(config.data, config.cameras)
    views = camera_views(data, protocol.test_subjects)
    trial_one = first_trials({(subject, sequence) for subject, sequence, _ in views})
    images, gt_2d, gt_3d = [], [], []
    for seq in camera_sequences(data, protocol.test_subjects):
        assert seq.camera is not None
        splits = split_of_frames(protocol, seq.subject, seq.sequence, seq.camera, seq.frames, trial_one, 1)
        splits = np.where(splits == "test", splits, None)
        pose_2d, pose_3d, kept = frame_rows(seq, skeleton, splits)
        images += [image_path(seq.subject, seq.sequence, seq.camera, int(seq.frames[k])) for k in kept]
        gt_2d.append(pose_2d)
        gt_3d.append(pose_3d)
    if not images:
        raise InputError(data.root, f"no test frame of {protocol.name} (subjects {', '.join(protocol.test_subjects)})")
    query = np.concatenate(gt_2d)
    truth = np.concatenate(gt_3d)
    if config.max_frames:
        images, query, truth = images[: config.max_frames], query[: config.max_frames], truth[: config.max_frames]
    mask = np.ones(query.shape[:2], bool)
    matches = search_bank(bank, query, mask, 1, config=SearchConfig(engine=config.engine), progress=progress,
                          description=f"matching {len(query)} test frames")  # fmt: skip
    pred = gather_matches(bank, matches.rows).pose_3d[:, 0].astype(np.float64)
    return BaselinePredictions(images, pred, truth, matches.distances[:, 0], skeleton.name)
