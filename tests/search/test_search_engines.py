"""Every engine returns what the numpy reference returns (ties aside), and the reference is right."""

from __future__ import annotations

import numpy as np
import pytest
from knn_helpers import assert_knn_matches, brute_force, literal_distance, pose_data

from posebank.search import SearchConfig, masked_knn, prepare_bank

EXACT_ENGINES = ("blas", "torch", "faiss")
SMALL_BLOCKS = SearchConfig(bank_block_rows=97, query_block_rows=13)  # not divisors: ragged last blocks


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return pose_data(n=1500, q=60, seed=1)


@pytest.fixture(scope="module")
def reference(data) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    bank, queries, masks = data
    return {k: masked_knn(bank, queries, masks, k + 1, engine="numpy") for k in (1, 4, 20)}


def test_reference_equals_literal_brute_force() -> None:
    bank, queries, masks = pose_data(n=150, q=24, seed=2)
    ref_d, ref_i = brute_force(bank, queries, masks, k=len(bank))
    for k in (1, 3):
        d, i = masked_knn(bank, queries, masks, k, engine="numpy", config=SearchConfig(bank_block_rows=40))
        assert_knn_matches(bank, queries, masks, d, i, ref_d, ref_i)


@pytest.mark.parametrize("engine", EXACT_ENGINES)
@pytest.mark.parametrize("k", [1, 4, 20])
@pytest.mark.parametrize("config", [SearchConfig(), SMALL_BLOCKS], ids=["default-blocks", "small-blocks"])
def test_engine_equals_reference(data, reference, engine: str, k: int, config: SearchConfig) -> None:
    bank, queries, masks = data
    ref_d, ref_i = reference[k]
    d, i = masked_knn(bank, queries, masks, k, engine=engine, config=config)
    assert_knn_matches(bank, queries, masks, d, i, ref_d, ref_i)


def test_torch_bank_split_across_devices_equals_reference(data, reference) -> None:
    """The multi-GPU path (shards + merge + shard offsets), run on three CPU 'devices'."""
    bank, queries, masks = data
    ref_d, ref_i = reference[4]
    config = SearchConfig(shard_devices=("cpu", "cpu", "cpu"), bank_block_rows=128, query_block_rows=16)
    d, i = masked_knn(bank, queries, masks, 4, engine="torch", config=config)
    assert_knn_matches(bank, queries, masks, d, i, ref_d, ref_i)


@pytest.mark.parametrize("engine", ("numpy",) + EXACT_ENGINES)
def test_block_offsets_find_rows_in_late_blocks(engine: str) -> None:
    """The only good match sits in the last bank block: a missing block offset would return a wrong id."""
    bank, queries, masks = pose_data(n=500, q=5, seed=3, degenerate_rows=False)
    target = np.arange(495, 500)
    queries = bank[target] * 250.0 + 40.0
    config = SearchConfig(bank_block_rows=64, query_block_rows=2)
    d, i = masked_knn(bank, queries, masks, 1, engine=engine, config=config)
    np.testing.assert_array_equal(i[:, 0], target)
    assert np.all(d < 1e-5)


@pytest.mark.parametrize("engine", ("numpy",) + EXACT_ENGINES)
def test_degenerate_rows_never_match(engine: str) -> None:
    """Rows whose masked joints coincide are never returned, even when k is the whole bank."""
    rng = np.random.default_rng(4)
    bank = rng.normal(size=(6, 13, 2)).astype(np.float32)
    bank[1] = 5.0  # every joint on one point: degenerate for every mask
    bank[4, [0, 1]] = bank[4, 0]  # ankles coincide: degenerate for the ankles-only mask
    queries = rng.normal(size=(2, 13, 2)).astype(np.float32)
    masks = np.zeros((2, 13), dtype=bool)
    masks[0, [0, 1]] = True
    masks[1] = True
    d, i = masked_knn(bank, queries, masks, 6, engine=engine)
    assert set(i[0][i[0] >= 0].tolist()) == {0, 2, 3, 5}
    assert set(i[1][i[1] >= 0].tolist()) == {0, 2, 3, 4, 5}
    assert np.all(np.isinf(d[0, 4:])) and np.all(i[0, 4:] == -1)
    assert np.isinf(d[1, 5]) and i[1, 5] == -1
    assert np.all(d[np.isfinite(d)] <= 2.0 + 1e-6)


@pytest.mark.parametrize("engine", ("numpy",) + EXACT_ENGINES)
def test_query_equal_to_bank_row_is_found_at_zero(engine: str) -> None:
    bank, _, masks = pose_data(n=800, q=30, seed=5, degenerate_rows=False)
    rng = np.random.default_rng(6)
    rows = rng.choice(len(bank), size=len(masks), replace=False)
    scale = rng.uniform(0.01, 500.0, size=(len(rows), 1, 1))
    shift = rng.uniform(-1e3, 1e3, size=(len(rows), 1, 2))
    queries = (bank[rows].astype(np.float64) * scale + shift).astype(np.float32)
    queries[~masks] = np.nan  # joints outside the mask are ignored
    d, i = masked_knn(bank, queries, masks, 1, engine=engine)
    assert np.all(d[:, 0] < 1e-3)
    # The row itself, or another at the same distance (a mask may not tell two rows apart).
    for q, (row, found) in enumerate(zip(rows, i[:, 0])):
        assert found == row or literal_distance(bank[found], queries[q], masks[q]) < 1e-3


def test_prepared_bank_and_flat_layout_give_the_same_result(data) -> None:
    bank, queries, masks = data
    d1, i1 = masked_knn(bank, queries, masks, 3, engine="blas")
    d2, i2 = masked_knn(prepare_bank(bank.reshape(len(bank), -1)), queries.reshape(len(queries), -1), masks, 3)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_array_equal(d1, d2)


def test_auto_engine_runs_on_cpu(data, reference) -> None:
    bank, queries, masks = data
    d, i = masked_knn(bank, queries, masks, 1)
    assert_knn_matches(bank, queries, masks, d, i, *reference[1])


@pytest.mark.gpu
def test_torch_cuda_equals_reference(data, reference) -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    bank, queries, masks = data
    for k in (1, 4):
        d, i = masked_knn(bank, queries, masks, k, engine="torch", config=SearchConfig(device="cuda"))
        assert_knn_matches(bank, queries, masks, d, i, *reference[k])
