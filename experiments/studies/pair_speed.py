"""LoRun-K against Block-K at inference, every task that has the pair, in one process, interleaved.

LoRun-9 (one shared base prior + nine LoRA sets, merged once per stage by ``zoo.nn.lora``'s cache) and Block-9
(nine independent priors of the same architecture) do the same arithmetic at inference, so their latency ratio
should be 1 up to the Python work around the merged weights. Each (pair, size, model) cell is timed once per round,
in a shuffled order each round (load drift hits every cell alike); the table gives the median of the per-round
ratios LoRun / Block and a 90 % bootstrap interval of that median (2000 resamples of the rounds). A control cell,
Block-9 against a second copy of itself loaded the same way ("A/A"), shows what the noise alone gives.

    OMP_NUM_THREADS=1 python experiments/studies/pair_speed.py --out results/deploy/pair_speed --threads 1
"""

from __future__ import annotations

import random
import statistics

import torch

import zoo
from _summary import interleaved, start_timing, timing_args, timing_info, write_timing  # noqa: E402  (this folder)

PAIRS = {"cs": ("lorun-cs-r25", "block9-cs-r25", (66, 128, 256, 512)),
         "cassi": ("lorun-cassi-9stg", "block9-cassi", (128, 256)),
         "sr ×4": ("lorun-sr-x4", "block9-sr-x4", (128, 256, 512))}


def main() -> None:
    a = timing_args("results/deploy/pair_speed", 15).parse_args()
    out = start_timing(a)
    nets = {m: zoo.load(m) for lo, bl, _ in PAIRS.values() for m in (lo, bl)}
    nets.update({f"{bl}#2": zoo.load(bl) for _, bl, _ in PAIRS.values()})  # the A/A control
    torch.manual_seed(0)
    inputs = {(task, s): nets[lo].example_inputs(s) for task, (lo, _, sizes) in PAIRS.items() for s in sizes}
    cells = [(task, s, m) for task, (lo, bl, sizes) in PAIRS.items() for s in sizes for m in (lo, bl, f"{bl}#2")]
    with torch.no_grad():
        for task, s, m in cells:  # warm-up (fills the merge cache)
            nets[m](**inputs[(task, s)])
        times = interleaved(cells, lambda c: nets[c[2]](**inputs[(c[0], c[1])]), a.rounds)
    boot = random.Random(1)

    def ratio(a: list[float], b: list[float]) -> tuple[float, list[float]]:
        r = [x / y for x, y in zip(a, b)]
        meds = sorted(statistics.median(boot.choices(r, k=len(r))) for _ in range(2000))
        return statistics.median(r), [meds[100], meds[1899]]

    rows = []
    for task, (lo, bl, sizes) in PAIRS.items():
        for s in sizes:
            r, ci = ratio(times[(task, s, lo)], times[(task, s, bl)])
            aa, aa_ci = ratio(times[(task, s, f"{bl}#2")], times[(task, s, bl)])
            rows.append({"task": task, "lorun": lo, "block": bl, "size": s,
                         "lorun_s": statistics.median(times[(task, s, lo)]),
                         "block_s": statistics.median(times[(task, s, bl)]), "ratio": r, "ci90": ci,
                         "aa_ratio": aa, "aa_ci90": aa_ci})
    info = timing_info(a, rows)
    write_timing(out, info, "LoRun-9 vs Block-9 at inference, interleaved in one process",
                 "Forward pass of the published weights (no grad, eval, channels-last as `zoo.load` gives them on CPU, "
                 "LoRA merge cache on)",
                 "ratio = LoRun time / Block time, median of the per-round ratios; ≤ 1 means LoRun is at least as fast. "
                 "SR sizes are the HR output. A/A = a second copy of Block-9 / Block-9: the spread noise alone gives. At inference "
                 "LoRun-9 runs plain per-stage copies with the adapters merged (zoo.nn.lora.merged_stages), the same "
                 "code as Block-9.",
                 ["task", "LoRun-9", "Block-9", "size", "LoRun (s)", "Block (s)", "LoRun / Block", "90 % interval",
                  "A/A", "A/A 90 % interval"],
                 [f"| {r['task']} | {r['lorun']} | {r['block']} | {r['size']}² | {r['lorun_s']:.3f} | {r['block_s']:.3f} | "
                  f"{r['ratio']:.3f} | {r['ci90'][0]:.3f}–{r['ci90'][1]:.3f} | {r['aa_ratio']:.3f} | "
                  f"{r['aa_ci90'][0]:.3f}–{r['aa_ci90'][1]:.3f} |" for r in rows], "pair_speed.py")


if __name__ == "__main__":
    main()
