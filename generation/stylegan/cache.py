"""A per-process LRU of loaded generators, so a worker loads each model once."""

from __future__ import annotations

import collections
import os
import threading
from pathlib import Path

import torch

from .checkpoint import WEIGHTS_FILE, load_generator
from .generator import Generator


class ModelCache:
    """Keeps up to ``max_size`` generators; the least recently used one is dropped.

    Entries are keyed by the checkpoint's real path, its weights file's size and
    modification time, and the device, so the same checkpoint reached through two
    paths is loaded once, and a replaced file is loaded afresh.
    """

    def __init__(self, max_size: int = 2) -> None:
        if max_size < 1:
            raise ValueError(f"model cache size must be at least 1, got {max_size}")
        self.max_size = max_size
        self._entries: collections.OrderedDict[tuple, Generator] = collections.OrderedDict()
        self._lock = threading.Lock()

    def _key(self, directory: str | Path, device: torch.device) -> tuple:
        weights = Path(directory).resolve() / WEIGHTS_FILE
        try:
            stat = os.stat(weights)
        except FileNotFoundError:
            return (str(weights), None, None, str(device))
        return (str(weights), stat.st_size, stat.st_mtime_ns, str(device))

    def get(
        self, directory: str | Path, device: str | torch.device = "cpu", expected_sha256: str | None = None
    ) -> Generator:
        """The generator saved in ``directory`` on ``device``, loaded at most once."""
        device = torch.device(device)
        key = self._key(directory, device)
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
            generator = load_generator(directory, device=device, expected_sha256=expected_sha256)
            self._entries[key] = generator
            while len(self._entries) > self.max_size:
                self._entries.popitem(last=False)
            return generator

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
