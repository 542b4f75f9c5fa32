"""Sampling CPU %, process memory and GPU use (nvidia-ml-py, torch.cuda) about once a second.

No GPU is the normal case on many machines: GPU fields are then None, never an error.
psutil calls cost tens of microseconds, so sampling is free next to training.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import psutil


@dataclasses.dataclass(frozen=True)
class Sample:
    """One reading; None where the device is absent."""

    cpu_percent: float
    rss_mb: float
    gpu_percent: float | None
    gpu_mem_mb: float | None


class SystemSampler:
    """Reads this process's CPU and memory, and the GPU it trains on if any.

    Args:
        gpu_index: the CUDA device index to watch, or None for no GPU.
    """

    def __init__(self, gpu_index: int | None = None) -> None:
        self._process = psutil.Process(os.getpid())
        self._process.cpu_percent(None)  # the first call only starts the interval
        self._nvml: Any = None
        self._handle: Any = None
        self._gpu_index = gpu_index
        if gpu_index is not None:
            self._nvml, self._handle = _open_nvml(gpu_index)

    @property
    def has_gpu(self) -> bool:
        """Whether GPU figures are available."""
        return self._gpu_index is not None

    def sample(self) -> Sample:
        """One reading (CPU % is averaged since the previous call)."""
        gpu_percent, gpu_mem = self._gpu()
        return Sample(
            cpu_percent=float(self._process.cpu_percent(None)),
            rss_mb=self._process.memory_info().rss / 2**20,
            gpu_percent=gpu_percent,
            gpu_mem_mb=gpu_mem,
        )

    def _gpu(self) -> tuple[float | None, float | None]:
        if self._gpu_index is None:
            return None, None
        if self._handle is not None:
            try:
                rates = self._nvml.nvmlDeviceGetUtilizationRates(self._handle)
                memory = self._nvml.nvmlDeviceGetMemoryInfo(self._handle)
                return float(rates.gpu), memory.used / 2**20
            except self._nvml.NVMLError:
                pass
        import torch  # only reached when training on CUDA, so torch is loaded already

        return None, torch.cuda.memory_allocated(self._gpu_index) / 2**20


def _open_nvml(index: int) -> tuple[Any, Any]:
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml, pynvml.nvmlDeviceGetHandleByIndex(index)
    except Exception:  # no driver, no library, no permission: GPU % unknown, not an error
        return None, None


def gpu_summary() -> list[dict[str, Any]]:
    """Name and memory of each NVIDIA GPU, or an empty list when there is none."""
    nvml, _ = _open_nvml(0)
    if nvml is None:
        return []
    gpus = []
    for i in range(nvml.nvmlDeviceGetCount()):
        handle = nvml.nvmlDeviceGetHandleByIndex(i)
        name = nvml.nvmlDeviceGetName(handle)
        total = nvml.nvmlDeviceGetMemoryInfo(handle).total / 2**20
        gpus.append({"index": i, "name": str(name), "memory_mb": total})
    return gpus
