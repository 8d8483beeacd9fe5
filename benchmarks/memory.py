"""Peak resident memory (RSS) of a process and of every process it started, sampled with psutil.

A sampler thread reads the RSS of the root process and of all its descendants every
``interval`` seconds and keeps each one's peak, and the peak of their sum at one sample. Pages
shared between processes (Ray's object store, copy-on-write pages) count in the RSS of every
process that maps them, so the sum is an upper bound of what the tree uses.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

import psutil

MB = 1 << 20


@dataclass
class ProcessPeak:
    pid: int
    label: str
    rss: int = 0


@dataclass
class MemoryPeaks:
    """What a :class:`MemorySampler` saw."""

    root: int = 0  # peak RSS of the root process
    processes: dict[int, ProcessPeak] = field(default_factory=dict)  # its descendants
    total: int = 0  # peak of the sum over the tree at one sample
    samples: int = 0

    @property
    def max_child(self) -> int:
        return max((p.rss for p in self.processes.values()), default=0)

    @property
    def max_process(self) -> int:
        """The highest peak of any one process of the tree."""
        return max(self.root, self.max_child)

    def summary(self) -> str:
        return (
            f"root {self.root / MB:.0f} MB, largest child {self.max_child / MB:.0f} MB "
            f"({len(self.processes)} children), tree {self.total / MB:.0f} MB"
        )


def _label(process: psutil.Process) -> str:
    try:
        words = process.cmdline()
    except psutil.Error:
        return "?"
    text = " ".join(words)
    return text if len(text) <= 80 else text[:77] + "..."


class MemorySampler:
    """Samples a process tree in a thread from ``with`` entry to exit.

    Args:
        pid: the root process.
        interval: seconds between samples.
    """

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.peaks = MemoryPeaks()
        self._root = psutil.Process(pid)
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self.sample():
                return
            self._stop.wait(self._interval)

    def sample(self) -> bool:
        """Take one sample; False once the root process is gone."""
        peaks = self.peaks
        try:
            rss = self._root.memory_info().rss
            children = self._root.children(recursive=True)
        except psutil.Error:
            return False
        peaks.root = max(peaks.root, rss)
        total = rss
        for child in children:
            try:
                child_rss = child.memory_info().rss
            except psutil.Error:
                continue
            total += child_rss
            seen = peaks.processes.get(child.pid)
            if seen is None:
                seen = peaks.processes[child.pid] = ProcessPeak(child.pid, _label(child))
            seen.rss = max(seen.rss, child_rss)
        peaks.total = max(peaks.total, total)
        peaks.samples += 1
        return True


__all__ = ["MB", "MemoryPeaks", "MemorySampler", "ProcessPeak"]
