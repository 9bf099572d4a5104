"""The approximate engine: exact when every cell is scanned, high recall with the defaults."""

from __future__ import annotations

import numpy as np
import pytest
from knn_helpers import assert_knn_matches, pose_data

from posebank.search import SearchConfig, masked_knn, prepare_bank, prepare_queries
from posebank.search.approximate import build_ivf_index
from posebank.search.synthetic import random_masks, random_poses_2d, random_queries


@pytest.mark.parametrize("query_block_rows", [None, 7])
def test_scanning_every_cell_is_exact(query_block_rows: int | None) -> None:
    bank, queries, masks = pose_data(n=2000, q=40, seed=11)
    config = SearchConfig(
        ivf_nlist=16, ivf_nprobe=16, ivf_nprobe_full=16, ivf_niter=4, query_block_rows=query_block_rows
    )
    # k = 1, 3: most cells hold more than k rows above the bar of the nearest cell, and keep their best k;
    # k = 300 is more than a cell holds (~125 rows): no query's nearest cell sets a bar for the others.
    for k in (1, 3, 300):
        ref_d, ref_i = masked_knn(bank, queries, masks, k + 1, engine="numpy")
        d, i = masked_knn(bank, queries, masks, k, engine="faiss-ivf", config=config)
        assert_knn_matches(bank, queries, masks, d, i, ref_d, ref_i)


def test_index_is_reusable_and_recall_is_high() -> None:
    rng = np.random.default_rng(12)
    bank = prepare_bank(random_poses_2d(20000, rng))
    queries, masks = random_queries(300, rng), random_masks(300, rng)
    index = build_ivf_index(bank, SearchConfig(ivf_nlist=64, ivf_nprobe=12, ivf_nprobe_full=8, ivf_niter=8))
    assert index.nlist == 64 and index.cell_start[-1] == 20000
    assert sorted(index.row_ids.tolist()) == list(range(20000))
    exact_d, _ = masked_knn(bank, queries, masks, 1, engine="blas")
    d, i = index.search(queries, masks, 1)
    recall = np.mean(np.abs(d[:, 0] - exact_d[:, 0]) <= 1e-5)
    assert recall >= 0.95, recall
    assert np.all(d[:, 0] >= exact_d[:, 0] - 1e-5)  # never better than exact
    d_all, _ = index.search(queries, masks, 1, nprobe=64, nprobe_full=64)
    np.testing.assert_allclose(d_all, exact_d, atol=1e-5)


def test_small_bank_gets_fewer_cells() -> None:
    bank, queries, masks = pose_data(n=100, q=5, seed=13, degenerate_rows=False)
    index = build_ivf_index(bank, SearchConfig(ivf_nlist=1024))
    assert index.nlist == 2  # 100 rows // 39 points per centroid
    with pytest.raises(ValueError, match="k must be"):
        index.search(queries, masks, 0)


def test_queries_of_several_k_in_one_call_get_what_each_k_alone_gets() -> None:
    """search_batch's k_query: annotate searches its people (k = 20) and their left/right check (k = 1) in one
    call; each query's candidates, bar and result are those of a call with its own k (few cells: approximate)."""
    rng = np.random.default_rng(14)
    bank = prepare_bank(random_poses_2d(6000, rng))
    queries, masks = random_queries(120, rng), random_masks(120, rng)
    index = build_ivf_index(bank, SearchConfig(ivf_nlist=32, ivf_nprobe=3, ivf_nprobe_full=2, ivf_niter=4))
    alone_5 = index.search(queries, masks, 5)
    alone_1 = index.search(queries, masks, 1)
    wanted = np.where(np.arange(120) % 2 == 0, 5, 1)
    batch = prepare_queries(queries, masks, bank.num_joints)
    d, i = index.search_batch(batch, 5, k_query=wanted)
    np.testing.assert_array_equal(d[wanted == 5], alone_5[0][wanted == 5])
    np.testing.assert_array_equal(i[wanted == 5], alone_5[1][wanted == 5])
    np.testing.assert_array_equal(d[wanted == 1, :1], alone_1[0][wanted == 1])
    assert np.isinf(d[wanted == 1, 1:]).all() and (i[wanted == 1, 1:] == -1).all()  # padding beyond a query's k
    # Probes per query: one call with two probe counts equals two calls.
    nprobe = np.where(np.arange(120) % 3 == 0, 8, 2)
    d_mixed, _ = index.search_batch(batch, 1, nprobe=nprobe, nprobe_full=nprobe)
    d_8, _ = index.search(queries, masks, 1, nprobe=8, nprobe_full=8)
    d_2, _ = index.search(queries, masks, 1, nprobe=2, nprobe_full=2)
    np.testing.assert_array_equal(d_mixed, np.where(nprobe[:, None] == 8, d_8, d_2))
    with pytest.raises(ValueError, match=">= 1"):
        index.search(queries, masks, 1, nprobe=0)
