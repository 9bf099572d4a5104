"""SearchConfig: the one frozen dataclass that parameterises masked nearest-neighbour search.

Every field has a default; `None` block sizes mean "the engine's own default" (they differ a lot
between a CPU cache tile and a GPU launch). The CLI flag of a field is its name with dashes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

ENGINES: tuple[str, ...] = ("auto", "numpy", "blas", "torch", "faiss", "faiss-ivf")


@dataclass(frozen=True)
class SearchConfig:
    """How `masked_knn` searches. See posebank/search/__init__.py for the maths."""

    engine: str = "auto"  # auto | numpy (reference) | blas | torch | faiss | faiss-ivf (approximate)
    bank_block_rows: int | None = None  # bank rows scored per step; None: the engine's default
    query_block_rows: int | None = None  # queries scored per step; None: the engine's default
    threads: int | None = None  # blas, faiss-ivf: CPU worker threads; None: the CPUs this process may use
    device: str = "auto"  # torch: "auto" (every CUDA device, else cpu), "cpu", "cuda", "cuda:1", ...
    shard_devices: tuple[str, ...] = ()  # torch: devices to split the bank over (overrides device)
    torch_kernel: str = "matmul"  # torch: "matmul" (torch.matmul + topk) or "triton" (fused kernel, triton_kernel.py)
    rerank_margin: int = 4  # extra float32 candidates per query, re-ranked by float64 distance
    degenerate_eps: float = 1e-3  # bank pose with spread over the mask <= eps x full spread: never matches
    ivf_nlist: int | None = None  # faiss-ivf: k-means cells; None: power of 2 nearest sqrt(N)/2 (512 at 1e6)
    # faiss-ivf cells scanned per query (nearest under its mask). On the 1.2M-row bank of the CMU and HDM05
    # samples with the 1,500 MPII people, 16 / 40 gave recall@1 0.988, 24 / 48 0.996 for 8% more CPU (BENCHMARKS.md).
    ivf_nprobe: int = 48  # faiss-ivf: cells per partial-mask query
    ivf_nprobe_full: int = 24  # faiss-ivf: cells per full-body query (fewer suffice)
    # faiss-ivf: cells per query of a set searched only to check a match, not to label (annotate's left/right
    # check; full-body queries scan half as many). 24: the same 25 flags as exact on the MPII sample (BENCHMARKS.md).
    ivf_nprobe_check: int = 24
    ivf_train_rows: int = 131072  # faiss-ivf: rows sampled for k-means (faiss keeps <= 256 per cell)
    ivf_niter: int = 12  # faiss-ivf: k-means iterations
    seed: int = 0  # faiss-ivf: k-means and sampling seed

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"unknown search engine {self.engine!r}; choose one of {', '.join(ENGINES)}")
        for name in ("bank_block_rows", "query_block_rows"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 (or None), got {value}")
        if self.torch_kernel not in ("matmul", "triton"):
            raise ValueError(f"torch_kernel must be 'matmul' or 'triton', got {self.torch_kernel!r}")
        if self.rerank_margin < 0:
            raise ValueError(f"rerank_margin must be >= 0, got {self.rerank_margin}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1 (or None), got {self.threads}")
        if not 0.0 < self.degenerate_eps < 1.0:
            raise ValueError(f"degenerate_eps must be in (0, 1), got {self.degenerate_eps}")
        for name in ("ivf_nlist", "ivf_nprobe", "ivf_nprobe_full", "ivf_nprobe_check", "ivf_train_rows", "ivf_niter"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    def to_dict(self) -> dict[str, Any]:
        """The resolved config as plain JSON-able values (saved next to every artefact)."""
        return asdict(self)
