"""Wall time and peak memory of a block: process RSS sampled by a thread; CUDA peak from torch."""

from __future__ import annotations

import threading
import time

import psutil
import torch

from negbench.run import interrupts

__all__ = ["PeakMemory", "Timer", "release_memory"]


class PeakMemory:
    """Context manager recording peak RSS (MB) of this process and peak CUDA allocation (MB)."""

    def __init__(self, interval_s: float = 0.05, device: str = "cpu") -> None:
        self.interval_s = interval_s
        self.cuda = device.startswith("cuda") and torch.cuda.is_available()
        self.peak_rss_mb = 0.0
        self.peak_gpu_mb: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._proc = psutil.Process()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_rss_mb = max(self.peak_rss_mb, self._proc.memory_info().rss / 2**20)
            self._stop.wait(self.interval_s)

    def __enter__(self) -> PeakMemory:
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        self.peak_rss_mb = self._proc.memory_info().rss / 2**20
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak_rss_mb = max(self.peak_rss_mb, self._proc.memory_info().rss / 2**20)
        if self.cuda:
            torch.cuda.synchronize()
            self.peak_gpu_mb = torch.cuda.max_memory_allocated() / 2**20


class Timer:
    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start


def release_memory(device: str) -> None:
    """Return freed memory to the system before a measured phase, so its peak is its own: Python garbage,
    glibc's free lists (``malloc_trim``; glibc keeps freed heap otherwise) and PyTorch's CUDA cache.
    Raises an interrupt received (and swallowed somewhere) since the run started."""
    interrupts.collect()  # an interrupt that landed in a gc callback stops the run here
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass
    if device.startswith("cuda") and torch.cuda.is_available():
        torch.cuda.empty_cache()
