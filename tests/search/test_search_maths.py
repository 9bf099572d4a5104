"""The maths behind the engines: invariances of eq. 9, the norm-table identity, the running top-k."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from knn_helpers import literal_distance, pose_data

from posebank.search import masked_knn, prepare_bank
from posebank.search.inputs import normalise_masked
from posebank.search.prepared import joint_tables, masked_inverse_spread, split_xy, tables_inverse_spread
from posebank.search.topk import CHUNK, RunningTopK


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return pose_data(n=400, q=40, seed=8, degenerate_rows=False)


@pytest.mark.parametrize("engine", ["numpy", "blas"])
def test_distance_invariant_to_query_translation_and_scale(data, engine: str) -> None:
    bank, queries, masks = data
    rng = np.random.default_rng(9)
    moved = queries * rng.uniform(0.05, 20.0, size=(len(queries), 1, 1)) + rng.uniform(-500, 500, (len(queries), 1, 2))
    d1, i1 = masked_knn(bank, queries, masks, 3, engine=engine)
    d2, i2 = masked_knn(bank, moved.astype(np.float32), masks, 3, engine=engine)
    np.testing.assert_allclose(d1, d2, atol=1e-4)
    np.testing.assert_array_equal(i1, i2)


@pytest.mark.parametrize("engine", ["numpy", "blas"])
def test_distance_invariant_to_bank_translation_and_scale(data, engine: str) -> None:
    bank, queries, masks = data
    rng = np.random.default_rng(10)
    moved = bank * rng.uniform(0.1, 10.0, size=(len(bank), 1, 1)) + rng.uniform(-5, 5, size=(len(bank), 1, 2))
    d1, i1 = masked_knn(bank, queries, masks, 3, engine=engine)
    d2, i2 = masked_knn(moved.astype(np.float32), queries, masks, 3, engine=engine)
    np.testing.assert_allclose(d1, d2, atol=1e-4)
    np.testing.assert_array_equal(i1, i2)


@settings(max_examples=50, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    scale=st.floats(0.01, 100.0),
    shift=st.floats(-1000.0, 1000.0),
)
def test_literal_distance_is_invariant_and_bounded(seed: int, scale: float, shift: float) -> None:
    rng = np.random.default_rng(seed)
    b, q = rng.normal(size=(2, 13, 2))
    mask = rng.random(13) < 0.6
    mask[rng.choice(13, 2, replace=False)] = True
    d = literal_distance(b, q, mask)
    assert 0.0 <= d <= 2.0 + 1e-12
    assert literal_distance(b, q * scale + shift, mask) == pytest.approx(d, abs=1e-9)
    assert literal_distance(b * scale - shift, q, mask) == pytest.approx(d, abs=1e-9)
    assert literal_distance(b, b * scale + shift, mask) == pytest.approx(0.0, abs=1e-6)


def test_norm_table_identity_equals_literal_spread(data) -> None:
    """1/||b_S - mean_S(b)|| from the tables equals the literal value (bank rows pre-normalised)."""
    bank, _, masks = data
    prepared = prepare_bank(bank)
    unique = np.unique(masks, axis=0)
    inv, degenerate = masked_inverse_spread(prepared.coords, prepared.sqnorm, unique, 1e-3)
    rows = prepared.coords.reshape(len(bank), 13, 2).astype(np.float64)
    for m, mask in enumerate(unique):
        _, spread = normalise_masked(rows, np.broadcast_to(mask, rows.shape[:2]))
        np.testing.assert_allclose(inv[m], 1.0 / spread, rtol=1e-4)
        assert not degenerate[m].any()


def test_transposed_tables_give_the_same_normalisers_and_scores() -> None:
    """The IVF layout (joint_tables, on a column slice) = masked_inverse_spread; split_xy keeps <q̄, b>."""
    bank, queries, masks = pose_data(n=300, q=30, seed=9, degenerate_rows=True)
    prepared = prepare_bank(bank)
    unique = np.unique(masks, axis=0)
    unique = unique[~unique.all(axis=1)]
    tables = joint_tables(prepared.coords, prepared.sqnorm)
    assert tables.shape == (39, 300)
    inv, degenerate = masked_inverse_spread(prepared.coords, prepared.sqnorm, unique, 1e-3)
    inv_t, degenerate_t = tables_inverse_spread(tables[:, 40:250], unique, 1e-3)
    np.testing.assert_array_equal(degenerate_t, degenerate[:, 40:250])
    np.testing.assert_allclose(inv_t, inv[:, 40:250], rtol=1e-5, atol=1e-6)
    qbar = prepared.coords[:5]  # any (Q, 2J) rows in (x0, y0, x1, ...) order
    np.testing.assert_allclose(split_xy(qbar) @ tables[13:], qbar @ prepared.coords.T, atol=1e-6)
    inv_all, degenerate_all = tables_inverse_spread(tables, unique, 1e-3)
    np.testing.assert_array_equal(degenerate_all, degenerate)
    assert degenerate_all[:, 3].all() and np.all(inv_all[:, 3] == 0)  # the all-zero row


def test_masked_cosine_identity(data) -> None:
    """<n_S(q), n_S(b)> = <n_S(q), b> / ||b_S - mean_S(b)||: the mean drops out against n_S(q)."""
    bank, queries, masks = data
    qbar, _ = normalise_masked(queries.astype(np.float64), masks)
    nb, spread = normalise_masked(bank[:5, None].astype(np.float64), np.broadcast_to(masks, (5,) + masks.shape))
    lhs = np.einsum("qjc,bqjc->bq", qbar, nb)
    rhs = np.einsum("qjc,bjc->bq", qbar, bank[:5].astype(np.float64)) / spread
    np.testing.assert_allclose(lhs, rhs, atol=1e-9)


@pytest.mark.parametrize("k", [1, 3, 7])
@pytest.mark.parametrize("block", [5, 16 * CHUNK, 16 * CHUNK + 3])
def test_running_topk_equals_full_sort(k: int, block: int) -> None:
    rng = np.random.default_rng(k * 1000 + block)
    scores = rng.normal(size=(9, 5 * block + 11)).astype(np.float32)
    scores[2] = -np.inf  # nothing valid for this query
    scores[3, : scores.shape[1] - 2] = -np.inf  # only two valid entries, in the last block
    scores[4, :] = -np.inf
    scores[4, [0, 2 * block]] = 1.0, 2.0  # only two valid entries, inside full blocks
    top = RunningTopK(len(scores), k)
    for i0 in range(0, scores.shape[1], block):
        top.add(scores[:, i0 : i0 + block].copy(), i0)
    for row in range(len(scores)):
        valid = np.isfinite(scores[row])
        expected = np.argsort(-scores[row], kind="stable")[: min(k, valid.sum())]
        got = top.filled_ids[row][top.filled_ids[row] >= 0]
        assert sorted(got.tolist()) == sorted(expected.tolist())
        np.testing.assert_array_equal(np.sort(top.scores[row][got_mask(top, row)]), np.sort(scores[row, expected]))


def got_mask(top: RunningTopK, row: int) -> np.ndarray:
    return top.filled_ids[row] >= 0
