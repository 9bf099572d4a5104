"""Fixtures of the audit tests: small real banks (the bundled CMU sample), anchors, and annotations
of the bundled MPII (40 people) and COCO (14 people) samples."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from posebank.anchors import AnchorConfig
from posebank.anchors.build import build_anchors
from posebank.annotate import AnnotateConfig, annotate
from posebank.bank.build import build_bank
from posebank.config import BankConfig, ViewConfig

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
DEMO = FIXTURES / "demo" / "cmu"
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
VIEWS = 4


def copy_cmu(root: Path, takes: dict[str, str]) -> Path:
    """A CMU folder with some subjects' ASF and one AMC each ({subject: take})."""
    for subject, take in takes.items():
        (root / "subjects" / subject).mkdir(parents=True)
        for f in (f"{subject}.asf", f"{take}.amc"):
            shutil.copy(DEMO / "subjects" / subject / f, root / "subjects" / subject)
    return root


def make_bank(tmp: Path, sources: tuple[tuple[str, str], ...]) -> Path:
    out = tmp / "bank"
    build_bank(BankConfig(sources=sources, out=str(out), view=ViewConfig(views=VIEWS)))
    return out


@pytest.fixture(scope="session")
def bank_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CMU 09 (09_12) and 135 (135_04): 344 poses, 4 views each."""
    tmp = tmp_path_factory.mktemp("audit-bank")
    return make_bank(tmp, (("cmu", str(copy_cmu(tmp / "cmu", {"09": "09_12", "135": "135_04"}))),))


@pytest.fixture(scope="session")
def small_bank_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CMU 09 alone. Deduplication keeps poses in (subject, sequence) order, so bank_dir holds every
    row of this bank (same pose ids, same views) and more: matching against it can only get better."""
    tmp = tmp_path_factory.mktemp("audit-small-bank")
    return make_bank(tmp, (("cmu", str(copy_cmu(tmp / "cmu", {"09": "09_12"}))),))


@pytest.fixture(scope="session")
def anchors_dir(bank_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("audit-anchors")
    build_anchors(AnchorConfig(bank=str(bank_dir), out=str(out), k=8, sample=0, engine="numpy"))
    return out


def _annotate(tmp: Path, dataset: str, file: Path, bank: Path) -> Path:
    out = tmp / f"ann-{dataset}"
    annotate(AnnotateConfig(label_mode="fused-fit", dataset=dataset, annotation_file=str(file), bank=str(bank), out=str(out), engine="numpy"))
    return out


@pytest.fixture(scope="session")
def mpii_dir(small_bank_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MPII validation, first 40 people (Stacked-Hourglass h5), matched against small_bank_dir."""
    return _annotate(tmp_path_factory.mktemp("audit-mpii"), "mpii", FIXTURES / "mpii" / "valid_a_first40.h5", small_bank_dir)


@pytest.fixture(scope="session")
def coco_dir(small_bank_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """COCO val2017 sample: 14 people in 4 images, two with too few keypoints."""
    return _annotate(tmp_path_factory.mktemp("audit-coco"), "coco", FIXTURES / "coco" / "mmpose_test_coco.json", small_bank_dir)


@pytest.fixture(scope="session")
def shared_bank_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CMU (bundled) + HDM05 + Pose Prior (../shared/data; skipped when absent)."""
    if not (SHARED / "hdm05").is_dir() or not (SHARED / "poseprior").is_dir():
        pytest.skip(f"HDM05 / Pose Prior sample data not found under {SHARED}")
    tmp = tmp_path_factory.mktemp("audit-shared-bank")
    cmu = copy_cmu(tmp / "cmu", {"09": "09_12", "135": "135_04"})
    return make_bank(tmp, (("cmu", str(cmu)), ("hdm05", str(SHARED / "hdm05")), ("poseprior", str(SHARED / "poseprior"))))


@pytest.fixture(scope="session")
def mpii_full_dir(bank_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MPII validation, 1500 people (../shared/data; skipped when absent), matched against bank_dir:
    some are flagged as left/right swaps."""
    h5 = SHARED / "mpii" / "valid_a.h5"
    if not h5.is_file():
        pytest.skip(f"MPII sample not found at {h5}")
    return _annotate(tmp_path_factory.mktemp("audit-mpii-full"), "mpii", h5, bank_dir)
