"""Peak extra resident memory and latency of one 256×256×28 reconstruction (fresh process per model).

``ru_maxrss`` cannot see a forward pass whose peak stays below the import-time peak, so this
samples the resident set (``/proc/self/statm``) every millisecond in a thread during the forward.

Usage: OMP_NUM_THREADS=1 python experiments/studies/cassi_peak_memory.py lorun-cassi-9stg block9-cassi gap-tv
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def child(name: str, size: int = 256) -> dict:
    import gc

    import torch

    import zoo

    torch.set_num_threads(1)
    net = zoo.load("lorun-cassi-9stg" if name == "gap-tv" else name)
    inputs = net.example_inputs(size)
    if name == "gap-tv":
        from zoo.tasks.cassi import GAPTV_SETTINGS
        from zoo.solvers import gap_tv

        run = lambda: gap_tv(net.physics, inputs["y"], mask=inputs["mask"], **GAPTV_SETTINGS)  # noqa: E731
    else:
        run = lambda: net(**inputs)  # noqa: E731
    gc.collect()
    base = _rss()
    peak = [base]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _rss())
            time.sleep(0.001)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    t = time.perf_counter()
    with torch.no_grad():
        run()
    dt = time.perf_counter() - t
    stop.set()
    th.join()
    return {"model": name, "peak_extra_mib": round((peak[0] - base) / 2**20, 1), "seconds": round(dt, 2), "threads": 1}


if __name__ == "__main__":
    if sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2])))
    else:
        for n in sys.argv[1:]:
            out = subprocess.run([sys.executable, __file__, "--child", n], capture_output=True, text=True, check=True)
            print(out.stdout.strip().splitlines()[-1], flush=True)
