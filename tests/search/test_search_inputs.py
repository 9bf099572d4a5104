"""Validation at the boundary of masked_knn, SearchConfig, and the package's import discipline."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from knn_helpers import pose_data

from posebank.search import SearchConfig, masked_knn, prepare_bank, resolve_engine


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return pose_data(n=50, q=4, seed=7, degenerate_rows=False)


def test_import_does_not_load_torch_or_faiss() -> None:
    code = "import posebank.search, sys; assert 'torch' not in sys.modules and 'faiss' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    ("bank_shape", "query_shape", "mask_shape", "match"),
    [
        ((50, 13, 3), (4, 13, 2), (4, 13), "bank_2d must have shape"),
        ((50, 13, 2), (4, 12, 2), (4, 13), "queries_2d must have shape"),
        ((50, 13, 2), (4, 13, 2), (4, 12), "masks must have shape"),
        ((50, 13, 2), (4, 13, 2), (3, 13), "masks must have shape"),
    ],
)
def test_bad_shapes(data, bank_shape, query_shape, mask_shape, match) -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=match):
        masked_knn(rng.normal(size=bank_shape), rng.normal(size=query_shape), np.ones(mask_shape, dtype=bool))


def test_nan_in_bank(data) -> None:
    bank, queries, masks = data
    bank = bank.copy()
    bank[17, 4, 1] = np.nan
    with pytest.raises(ValueError, match=r"bank_2d has NaN or inf in 1 row\(s\): 17"):
        masked_knn(bank, queries, masks)


def test_nan_only_matters_in_masked_query_joints(data) -> None:
    bank, queries, _ = data
    masks = np.ones((len(queries), 13), dtype=bool)
    masks[:, 0] = False
    queries = queries.copy()
    queries[:, 0] = np.nan  # outside the mask: ignored
    d, _ = masked_knn(bank, queries, masks)
    assert np.all(np.isfinite(d))
    queries[2, 5] = np.nan  # inside the mask: refused
    with pytest.raises(ValueError, match=r"NaN or inf in a masked joint: 2"):
        masked_knn(bank, queries, masks)


def test_masks_need_two_joints(data) -> None:
    bank, queries, masks = data
    masks = masks.copy()
    masks[1] = False
    masks[1, 3] = True
    with pytest.raises(ValueError, match=r"fewer than 2 masked joints: 1"):
        masked_knn(bank, queries, masks)


def test_masks_must_be_boolean(data) -> None:
    bank, queries, masks = data
    masked_knn(bank, queries, masks.astype(np.uint8))  # 0/1 integers are fine
    with pytest.raises(ValueError, match="masks must be bool"):
        masked_knn(bank, queries, masks.astype(np.float32))


def test_query_with_coincident_masked_joints(data) -> None:
    bank, queries, masks = data
    queries = queries.copy()
    queries[0] = 321.0
    with pytest.raises(ValueError, match="all masked joints at one point: 0"):
        masked_knn(bank, queries, masks)


@pytest.mark.parametrize("k", [0, 51, 2.0])
def test_k_out_of_range(data, k) -> None:
    bank, queries, masks = data
    with pytest.raises(ValueError, match="k must be an integer"):
        masked_knn(bank, queries, masks, k)


def test_unknown_engine(data) -> None:
    bank, queries, masks = data
    with pytest.raises(ValueError, match="unknown search engine"):
        masked_knn(bank, queries, masks, engine="cuvs")
    with pytest.raises(ValueError, match="unknown search engine"):
        SearchConfig(engine="cuvs")


def test_empty_bank_and_no_queries(data) -> None:
    bank, _, _ = data
    with pytest.raises(ValueError, match="empty"):
        prepare_bank(np.zeros((0, 13, 2)))
    d, i = masked_knn(bank, np.zeros((0, 13, 2)), np.zeros((0, 13), dtype=bool), 2)
    assert d.shape == (0, 2) and i.shape == (0, 2)


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="bank_block_rows"):
        SearchConfig(bank_block_rows=0)
    with pytest.raises(ValueError, match="degenerate_eps"):
        SearchConfig(degenerate_eps=0.0)
    with pytest.raises(ValueError, match="ivf_nprobe"):
        SearchConfig(ivf_nprobe=0)
    assert SearchConfig().to_dict()["engine"] == "auto"


def test_auto_means_blas_without_cuda(monkeypatch) -> None:
    monkeypatch.setattr("posebank.search.cuda_present", lambda: False)
    assert resolve_engine("auto") == "blas"
    assert resolve_engine("faiss") == "faiss"
