"""Keep large CPU tensors in the heap: glibc ``mallopt`` for inference at large image sizes.

glibc serves every allocation above its mmap threshold (128 KiB, raised dynamically up to 32 MiB)
with a fresh ``mmap`` and returns it with ``munmap`` on free, so a network whose activations are
tens of MiB (a 1024² image) page-faults its memory in again at every layer. Raising the mmap and
trim thresholds keeps freed blocks for reuse: ``lorun-cs-r25`` at 1024² on one thread runs in 12–19 s
instead of 54–56 s (two processes each way, alternated; ``experiments/studies/efficiency.py --allocator``);
at 256² nothing changes. The resident set after a pass stays near its peak (memory is not handed
back), which is why only the CLI does it by default, not ``import zoo``.

Set ``ZOO_MALLOC_TUNING=0`` to leave the allocator alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

__all__ = ["tune_allocator", "tuned"]

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_STATE = {"done": None}
log = logging.getLogger(__name__)


def tune_allocator(mmap_threshold: int = 1 << 30, trim_threshold: int = 1 << 31) -> bool:
    """Raise glibc's mmap/trim thresholds for this process (once); False where it does not apply
    (not Linux/glibc, or ``ZOO_MALLOC_TUNING=0``)."""
    if _STATE["done"] is not None:
        return bool(_STATE["done"])
    ok = False
    if sys.platform.startswith("linux") and os.environ.get("ZOO_MALLOC_TUNING", "1") != "0":
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            ok = bool(libc.mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold))) and \
                bool(libc.mallopt(_M_TRIM_THRESHOLD, int(trim_threshold)))
        except (OSError, AttributeError):  # musl or another libc without mallopt
            ok = False
    _STATE["done"] = ok
    log.debug("glibc allocator thresholds %s", "raised" if ok else "left as they are")
    return ok


def tuned() -> bool:
    """Whether :func:`tune_allocator` raised the thresholds in this process."""
    return bool(_STATE["done"])
