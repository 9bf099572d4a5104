"""The pass/fail rules of bench/learn_cpu.py's verdict, on hand-built evaluation curves."""

from __future__ import annotations

from typing import Any


def curve_point(ppi: float, nms: float, anchor_only: float, anchor_only_nms: float = 0.1) -> dict[str, Any]:
    """One evaluation as `summary` gives it: every PPI setting at `ppi`."""
    return {"ppi": {"pck": ppi, "detected": 1.0}, "ppi_paper": {"pck": ppi}, "ppi_release": {"pck": ppi},
            "nms": {"pck": nms}, "anchor_only": {"ppi": {"pck": anchor_only}, "nms": {"pck": anchor_only_nms}}}  # fmt: skip


def test_learning_passes_only_at_twice_the_anchor_only_baseline_and_above_nms(bench_script) -> None:  # type: ignore[no-untyped-def]
    verdict = bench_script("learn_cpu").verdict
    mem = {"curve": [curve_point(0.9, 0.9, 0.3)]}

    passed = verdict(mem, {"curve": [curve_point(0.5, 0.4, 0.25)]})
    assert passed["memorisation_pass"] and passed["learning_ppi_pass"] and passed["learning_ppi_release_pass"]
    assert passed["learning_ppi_over_anchor_only"] == 2.0
    assert passed["learning_nms_over_anchor_only_nms"] == 4.0  # reported, not a criterion

    assert not verdict(mem, {"curve": [curve_point(0.49, 0.4, 0.25, anchor_only_nms=0.01)]})["learning_ppi_pass"]  # under 2x
    assert not verdict(mem, {"curve": [curve_point(0.5, 0.51, 0.25)]})["learning_ppi_pass"]  # under NMS


def test_a_network_that_places_nobody_passes_nothing(bench_script) -> None:  # type: ignore[no-untyped-def]
    out = bench_script("learn_cpu").verdict({"curve": [curve_point(0.0, 0.0, 0.0)]}, {"curve": [curve_point(0.0, 0.0, 0.0)]})
    assert not out["memorisation_pass"]
    assert not any(out[f"learning_{m}_pass"] for m in ("ppi", "ppi_paper", "ppi_release"))
    assert out["learning_ppi_over_anchor_only"] is None
