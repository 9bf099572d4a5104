"""The fused Triton kernel of the torch engine, run on the CPU in Triton's interpreter.

TRITON_INTERPRET must be set before triton is imported, so the check runs in a child process. The
same kernel runs on a GPU in bench/gpu_search_anchors.py (and in the `gpu`-marked test below).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from knn_helpers import assert_knn_matches, brute_force, pose_data

from posebank.search import SearchConfig, masked_knn

# Bank, queries and masks as in the engine tests, small enough for the interpreter (a few seconds):
# 520 rows = 2 bank slices of several 128-row tiles, one partial; 3 masks, so several query blocks.
_CHECK = textwrap.dedent(
    """
    import sys
    import numpy as np
    sys.path.insert(0, {helpers!r})
    from knn_helpers import pose_data
    from posebank.search import SearchConfig, masked_knn

    bank, queries, masks = pose_data(n=520, q=40, seed=11, degenerate_rows=True)
    config = SearchConfig(engine="torch", device="cpu", torch_kernel="triton")
    d, i = masked_knn(bank, queries, masks, 3, config=config)

    # The kernel itself, with the bank cut into 1 and 3 slices: the same best cosines.
    import torch
    from posebank.search import prepare_bank
    from posebank.search.inputs import prepare_queries
    from posebank.search.triton_kernel import fused_masked_topk

    prepared, batch = prepare_bank(bank), prepare_queries(queries, masks, 13)
    order = np.argsort(batch.group, kind="stable")
    args = (torch.from_numpy(batch.qbar[order]), batch.group[order], batch.unique_masks,
            torch.from_numpy(prepared.coords), torch.from_numpy(prepared.sqnorm), 5, 1e-6)
    one = fused_masked_topk(*args, slices=1)[0].numpy()
    three = fused_masked_topk(*args, slices=3)[0].numpy()
    np.savez({out!r}, d=d, i=i, one=one, three=three)
    """
)


def test_fused_kernel_in_interpreter_equals_brute_force(tmp_path: Path) -> None:
    out = tmp_path / "result.npz"
    script = _CHECK.format(helpers=str(Path(__file__).parent), out=str(out))
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    run = subprocess.run([sys.executable, "-c", script], env=env, check=False, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    result = np.load(out)
    bank, queries, masks = pose_data(n=520, q=40, seed=11, degenerate_rows=True)
    assert len(np.unique(masks, axis=0)) >= 3
    ref_d, ref_i = brute_force(bank, queries, masks, 4)
    assert_knn_matches(bank, queries, masks, result["d"], result["i"], ref_d, ref_i)
    np.testing.assert_array_equal(result["one"], result["three"])
    assert np.isfinite(result["one"]).all()


@pytest.mark.gpu
def test_fused_kernel_on_cuda_equals_brute_force() -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.fail("marked gpu but torch sees no CUDA device")
    bank, queries, masks = pose_data(n=3000, q=200, seed=12, degenerate_rows=True)
    ref_d, ref_i = brute_force(bank, queries, masks, 6)
    d, i = masked_knn(bank, queries, masks, 5, config=SearchConfig(engine="torch", device="cuda", torch_kernel="triton"))
    assert_knn_matches(bank, queries, masks, d, i, ref_d, ref_i)
