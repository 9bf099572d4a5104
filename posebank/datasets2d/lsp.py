"""Read Leeds Sports Pose joints.mat files (LSP and LSP-extended) into `PersonAnnotations`.

Both files hold one person per image and 14 joints (manifests/lsp.toml, joint_order), but their layout
and the meaning of the third value differ; the layout is recognised from the array's shape alone:

- LSPET, (14, 3, N) = [joint, (x, y, flag), image]: flag 1 = visible, 0 = NOT ANNOTATED. Evidence from
  the 10000-image file: every one of its 16787 flag-0 joints has a placeholder position, one coordinate
  exactly 0 and the other <= 0, never a point inside the image (flag-1 joints: 3 of 123213 have a zero
  coordinate). So annotated = flag 1, and LSPET has no occlusion flag (occlusion_flag False).
- LSP, (3, 14, N) = [(x, y, flag), joint, image]: every joint has coordinates (the annotators estimated
  occluded ones), so all are annotated; the flag is said to be inverted (0 = visible, 1 = occluded). That
  is unverified (the file is not in the sample data): `visibility_inverted=None` assumes it for this
  layout, True/False overrides it.

Image names: LSPET im00001.jpg .. im10000.jpg (5 digits), LSP im0001.jpg .. im2000.jpg (4 digits), the
names of the archives' images/ folders (paths here are relative to that folder). Splits: LSPET is all
"train"; the 2000-image LSP is "train" for images 1-1000 and "test" for 1001-2000.
Coordinates: px, MATLAB 1-based, not shifted; they may lie outside the image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from ._common import check_finite, check_flags, source_joint_order
from .annotations import PersonAnnotations, build_annotations
from .image_size import read_image_sizes

LSP_NUM_IMAGES = 2000  # the original LSP: its first 1000 images are the training split, the rest the test split


def read_lsp(
    path: str | Path,
    *,
    visibility_inverted: bool | None = None,
    image_name_format: str | None = None,
    images_root: Path | None = None,
) -> PersonAnnotations:
    """Read the `joints` array of an LSP or LSPET joints.mat.

    Args:
        path: joints.mat (MATLAB v5).
        visibility_inverted: LSP (3, 14, N) layout only: True = flag 1 means occluded (the default for that
            layout, None), False = flag 1 means visible. The LSPET layout's flag means annotated and
            takes no override (True raises InputError).
        image_name_format: format of the image name from the 1-based image number; default "im{:05d}.jpg"
            for LSPET and "im{:04d}.jpg" for LSP.
        images_root: the images/ folder, for reading image sizes (optional).

    Returns:
        PersonAnnotations, dataset "lsp", source_format "lspet_mat" or "lsp_mat", one row per image;
        person 0; record = 0-based image index. extras: flag (N, 14) the raw third value, image_id (N,)
        the 0-based image index (im00001.jpg -> 0).

    Raises:
        InputError: unreadable file, no `joints`, a shape that is neither (14, 3, N) nor (3, 14, N), a flag
            outside {0, 1}, non-finite coordinates of an annotated joint.
    """
    from scipy.io import loadmat  # heavy import, only when a .mat is read

    path = Path(path)
    joint_names = source_joint_order("lsp")
    num_joints = len(joint_names)
    try:
        mat = loadmat(str(path))
    except Exception as exc:  # scipy raises many types on bad files (MatReadError, IndexError, v7.3 files...)
        raise InputError(path, f"cannot read the MATLAB file: {type(exc).__name__}: {exc}") from exc
    if "joints" not in mat:
        raise InputError(path, f"no 'joints' variable (has: {', '.join(k for k in mat if not k.startswith('__'))})")
    joints = np.asarray(mat["joints"], dtype=np.float64)
    if joints.ndim == 3 and joints.shape[:2] == (num_joints, 3):
        source_format, xy, flag = "lspet_mat", joints[:, :2, :].transpose(2, 0, 1), joints[:, 2, :].T
    elif joints.ndim == 3 and joints.shape[:2] == (3, num_joints):
        source_format, xy, flag = "lsp_mat", joints[:2].transpose(2, 1, 0), joints[2].T
    else:
        raise InputError(path, f"joints has shape {joints.shape}, expected (14, 3, N) (LSPET) or (3, 14, N) (LSP)")
    n = xy.shape[0]
    digits = 5 if source_format == "lspet_mat" else 4
    name_format = image_name_format or f"im{{:0{digits}d}}.jpg"
    image = np.asarray([name_format.format(k + 1) for k in range(n)], dtype=str)

    def record_of(row: int, joint: int = 0) -> str:
        return f"image {row} ({image[row]}), joint {joint_names[joint]}"

    check_flags(path, flag, (0, 1), "visibility flag", record_of)
    if source_format == "lspet_mat":
        if visibility_inverted:
            raise InputError(path, "visibility_inverted was requested, but this is the LSPET layout (14, 3, N), "
                             "whose flag means 1 = visible, 0 = not annotated: it cannot be inverted")
        annotated = flag == 1  # flag 0 joints hold placeholders, not positions (see module docstring)
        occluded = np.zeros_like(annotated)
        split = np.full(n, "train")
    else:
        inverted = True if visibility_inverted is None else visibility_inverted
        annotated = np.ones((n, num_joints), dtype=bool)
        occluded = flag == (1 if inverted else 0)
        split = np.where(np.arange(n) < LSP_NUM_IMAGES // 2, "train", "test") if n == LSP_NUM_IMAGES else "unknown"
    check_finite(path, np.where(annotated[..., None], xy, 0.0), "joint coordinates", record_of)
    return build_annotations(
        dataset="lsp",
        source_format=source_format,
        path=str(path),
        joint_names=joint_names,
        occlusion_flag=source_format == "lsp_mat",
        split=split,
        image=image,
        person=np.zeros(n),
        record=np.arange(n),
        pose_2d=xy,
        annotated=annotated,
        occluded=occluded,
        image_size=read_image_sizes(images_root, image) if images_root is not None else None,
        extras={"flag": flag.astype(np.int8), "image_id": np.arange(n, dtype=np.int64)},
    )
