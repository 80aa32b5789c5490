"""What a stage cost: wall time and peak memory (the process's RSS; the GPU's, when on one)."""

from __future__ import annotations

import resource
import sys
import time


def usage(t0: float) -> dict[str, float]:
    """``wall_time_s`` since ``t0`` (``time.time()``), ``peak_rss_mb`` of this process so far and,
    when torch has used CUDA, ``peak_gpu_mb`` (``torch.cuda.max_memory_allocated``)."""
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    rss_mb = rss_kb / (1024 * 1024) if sys.platform == "darwin" else rss_kb / 1024
    out = {"wall_time_s": round(time.time() - t0, 2), "peak_rss_mb": round(rss_mb, 1)}
    torch = sys.modules.get("torch")  # never import torch just to say it was not used
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        out["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out
