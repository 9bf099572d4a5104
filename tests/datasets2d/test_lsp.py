"""LSP / LSPET joints.mat reader: layout by shape, visibility semantics (with the evidence), bad inputs.

LSP data may not be embedded: tests on real data read ../shared/data/lsp; the others write synthetic files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.io import loadmat, savemat

from posebank.datasets2d import read_lsp, to_canonical_2d
from posebank.errors import InputError


def _write(path: Path, joints: np.ndarray) -> Path:
    savemat(str(path), {"joints": joints})
    return path


def _lspet_like(n: int = 3) -> np.ndarray:
    """(14, 3, n): joint k of image i at (10 + k, 20 + i), visible; image 1 misses its head top."""
    joints = np.zeros((14, 3, n))
    joints[:, 0, :] = 10 + np.arange(14)[:, None]
    joints[:, 1, :] = 20 + np.arange(n)[None, :]
    joints[:, 2, :] = 1
    joints[13, :, 1] = (0.0, -26.1, 0.0)  # a placeholder, as LSPET writes them
    return joints


def test_lspet_layout_flag_zero_is_not_annotated(tmp_path: Path):
    ann = read_lsp(_write(tmp_path / "joints.mat", _lspet_like()))
    assert ann.source_format == "lspet_mat" and not ann.occlusion_flag
    assert ann.image.tolist() == ["im00001.jpg", "im00002.jpg", "im00003.jpg"]
    assert ann.split.tolist() == ["train"] * 3 and ann.person.tolist() == [0, 0, 0]
    assert ann.num_annotated.tolist() == [14, 13, 14]
    assert np.isnan(ann.source_pose_2d[1, 13]).all() and not ann.source_occluded.any()
    np.testing.assert_allclose(ann.source_pose_2d[2, 4], [14, 22])
    with pytest.raises(InputError, match="cannot be inverted"):
        read_lsp(tmp_path / "joints.mat", visibility_inverted=True)


def test_lsp_layout_inversion_option(tmp_path: Path):
    n = 2000
    joints = np.zeros((3, 14, n))
    joints[0] = 5 + np.arange(14)[:, None]
    joints[1] = 7 + np.arange(n)[None, :]
    joints[2, 3, 0] = 1  # image 1, left hip: flag 1
    path = _write(tmp_path / "lsp.mat", joints)
    ann = read_lsp(path)  # default for this layout: inverted, flag 1 = occluded
    assert ann.source_format == "lsp_mat" and ann.occlusion_flag
    assert ann.source_annotated.all()  # every LSP joint has coordinates
    assert ann.source_occluded.sum() == 1 and ann.source_occluded[0, 3]
    assert ann.image[0] == "im0001.jpg" and ann.image[-1] == "im2000.jpg"
    assert (ann.split[:1000] == "train").all() and (ann.split[1000:] == "test").all()
    np.testing.assert_allclose(ann.source_pose_2d[9, 2], [7, 16])  # [(x, y, flag), joint, image]
    plain = read_lsp(path, visibility_inverted=False)  # flag 1 = visible
    assert plain.source_occluded.sum() == 14 * n - 1 and not plain.source_occluded[0, 3]
    named = read_lsp(path, image_name_format="images/im{:04d}.jpg")
    assert named.image[1] == "images/im0002.jpg"


@pytest.mark.parametrize(
    ("joints", "message"),
    [
        (np.zeros((14, 2, 3)), r"joints has shape \(14, 2, 3\)"),
        (np.zeros((13, 3, 3)), r"joints has shape \(13, 3, 3\)"),
        (np.zeros((14, 3)), r"joints has shape \(14, 3\)"),
    ],
)
def test_bad_shapes(tmp_path: Path, joints: np.ndarray, message: str):
    with pytest.raises(InputError, match=message):
        read_lsp(_write(tmp_path / "bad.mat", joints))


def test_bad_values_name_the_image_and_joint(tmp_path: Path):
    joints = _lspet_like()
    joints[12, 2, 2] = 2
    with pytest.raises(InputError) as info:
        read_lsp(_write(tmp_path / "flag.mat", joints))
    assert "visibility flag is 2" in info.value.message and info.value.record == "image 2 (im00003.jpg), joint neck"
    joints = _lspet_like()
    joints[5, 0, 0] = np.nan
    with pytest.raises(InputError, match="not finite") as info:
        read_lsp(_write(tmp_path / "nan.mat", joints))
    assert info.value.record == "image 0 (im00001.jpg), joint left_ankle"
    savemat(str(tmp_path / "other.mat"), {"pose": np.zeros(3)})
    with pytest.raises(InputError, match="no 'joints' variable"):
        read_lsp(tmp_path / "other.mat")


def test_lspet_evidence_flag_zero_joints_are_placeholders(shared_data: Path):
    """The data behind "flag 0 = not annotated": every flag-0 joint has one coordinate 0, the other <= 0."""
    joints = loadmat(str(shared_data / "lsp" / "lspet_joints.mat"))["joints"]
    assert joints.shape == (14, 3, 10000)
    xy, flag = joints[:, :2, :].transpose(2, 0, 1), joints[:, 2, :].T
    hidden = xy[flag == 0]
    assert len(hidden) == 16787
    assert ((hidden == 0).any(axis=1) & (hidden <= 0).all(axis=1)).all()
    shown = xy[flag == 1]
    assert ((shown == 0).any(axis=1)).sum() == 3 and (shown > 0).all(axis=1).mean() > 0.9999


def test_shared_lspet(shared_data: Path):
    readme = (shared_data / "lsp" / "lspet_README.txt").read_text()
    assert "10,000 images" in readme and "Right ankle" in readme and "Head top" in readme
    ann = read_lsp(shared_data / "lsp" / "lspet_joints.mat")
    assert len(ann) == 10000 and ann.image[-1] == "im10000.jpg"
    assert ann.source_annotated.sum() == 123213 and not ann.source_occluded.any()
    assert np.isfinite(ann.source_pose_2d[ann.source_annotated]).all()
    assert np.isnan(ann.source_pose_2d[~ann.source_annotated]).all()
    canonical = to_canonical_2d(ann, "j17")
    names = canonical.joint_names
    head, neck = names.index("head"), names.index("neck")
    both = ann.source_annotated[:, 12] & ann.source_annotated[:, 13]
    np.testing.assert_array_equal(canonical.visible[:, head], both)
    np.testing.assert_allclose(canonical.pose_2d[both, head], ann.source_pose_2d[both][:, 12:14].mean(axis=1))
    np.testing.assert_array_equal(canonical.visible[:, neck], ann.source_annotated[:, 12])


def test_lsp_neck_is_the_top_of_the_neck(shared_data: Path):
    """LSP's neck sits ~25% of the way from the shoulder midpoint to the head top (MPII upper_neck ~20%)."""
    ann = read_lsp(shared_data / "lsp" / "lspet_joints.mat")
    names = ann.joint_names
    idx = [names.index(n) for n in ("right_shoulder", "left_shoulder", "neck", "head_top")]
    ok = ann.source_annotated[:, idx].all(axis=1)
    rs, ls, neck, top = (ann.source_pose_2d[ok, i] for i in idx)
    mid = (rs + ls) / 2
    ratio = np.linalg.norm(neck - mid, axis=1) / np.linalg.norm(top - mid, axis=1)
    assert 0.15 < np.median(ratio) < 0.35
