"""What the per-call LoRA merge costs at inference, and what merging once (the cache of zoo.nn.lora) saves.

LoRun-9 (``lorun-cs-r25``: one shared base + 9 LoRA sets) vs Block-9 (``block9-cs-r25``: 9 plain denoisers), CS
ratio 25 %, at 66², 128², 256², forward pass, no grad, eval mode. LoRun runs with the merge cache off (``W0 + B_k·A_k``
rebuilt on every call, the old behaviour) and on; Block-9 has no LoRA layers, it is the reference; "LoRun-9 merged"
is LoRun-9's nine merged denoisers (``zoo.nn.lora.merge_lora``) run as plain convolutions in Block-9's code path
(same outputs as LoRun-9, bit for bit): the floor the cache can reach. Every
(model, size, cache) cell is timed once per round, the cells in a shuffled order each round, all in one process
(interleaved: machine-load drift hits every cell alike); medians over the rounds, reported as ratios.

    OMP_NUM_THREADS=1 python experiments/studies/lora_merge_cost.py --out results/deploy/lora_merge --threads 1
"""

from __future__ import annotations

import copy
import statistics

import torch

import zoo
from zoo.nn.lora import merge_cache, merge_lora
from _summary import interleaved, start_timing, timing_args, timing_info, write_timing  # noqa: E402  (this folder)

SIZES = (66, 128, 256)
MODELS = ("lorun-cs-r25", "block9-cs-r25")


def main() -> None:
    a = timing_args("results/deploy/lora_merge", 15).parse_args()
    out = start_timing(a)
    nets = {m: zoo.load(m) for m in MODELS}
    plain = copy.deepcopy(nets["block9-cs-r25"])  # LoRun-9's merged weights in Block-9's code path
    plain.denoisers, plain.physics = merge_lora(nets["lorun-cs-r25"].denoiser), nets["lorun-cs-r25"].physics
    with torch.no_grad():
        plain.step.copy_(nets["lorun-cs-r25"].step)
        plain.strength.copy_(nets["lorun-cs-r25"].strength)
    nets["lorun-merged"] = plain.eval()
    models = (*MODELS, "lorun-merged")
    inputs = {(m, s): nets[m].example_inputs(s) for m in MODELS for s in SIZES}
    inputs.update({("lorun-merged", s): inputs[("lorun-cs-r25", s)] for s in SIZES})  # the same Φ, the same y
    cells = [(m, s, c) for m in models for s in SIZES for c in ((False, True) if m == "lorun-cs-r25" else (None,))]
    check = {}
    with torch.no_grad():
        for m, s, c in cells:  # warm-up; and the cached output must equal the uncached one bit for bit
            with merge_cache(bool(c)):
                check[(m, s, c)] = nets[m](**inputs[(m, s)])
        for s in SIZES:
            ref = check[("lorun-cs-r25", s, False)]
            if not torch.equal(ref, check[("lorun-cs-r25", s, True)]):
                raise AssertionError(f"cached and uncached LoRun outputs differ at {s}²")
            if (ref - check[("lorun-merged", s, None)]).abs().max() > 1e-5:
                raise AssertionError(f"merged LoRun differs from LoRun at {s}²")
        def run(cell: tuple) -> None:
            with merge_cache(bool(cell[2])):
                nets[cell[0]](**inputs[(cell[0], cell[1])])

        times = interleaved(cells, run, a.rounds)
    med = {k: statistics.median(v) for k, v in times.items()}
    rows = []
    for s in SIZES:
        off, on, blk = med[("lorun-cs-r25", s, False)], med[("lorun-cs-r25", s, True)], med[("block9-cs-r25", s, None)]
        mg = med[("lorun-merged", s, None)]
        rows.append({"size": s, "lorun_cache_off_ms": off * 1e3, "lorun_cache_on_ms": on * 1e3, "block9_ms": blk * 1e3,
                     "lorun_merged_ms": mg * 1e3, "off_over_on": off / on, "lorun_off_over_block": off / blk,
                     "lorun_on_over_block": on / blk, "lorun_on_over_merged": on / mg})
    info = {**timing_info(a, rows), "bit_identical": True}
    write_timing(out, info, "LoRA merge cost at inference: LoRun-9 vs Block-9 (CS r25)",
                 "Median forward ms (no grad, eval)",
                 "Cached and uncached LoRun outputs are bit-identical at every size; the merged copy agrees to ≤ 1e-5.",
                 ["size", "LoRun-9 cache off (ms)", "LoRun-9 cache on (ms)", "LoRun-9 merged (ms)", "Block-9 (ms)",
                  "off/on", "LoRun off/Block", "LoRun on/Block", "LoRun on/merged"],
                 [f"| {r['size']}² | {r['lorun_cache_off_ms']:.1f} | {r['lorun_cache_on_ms']:.1f} | "
                  f"{r['lorun_merged_ms']:.1f} | {r['block9_ms']:.1f} | {r['off_over_on']:.2f} | "
                  f"{r['lorun_off_over_block']:.2f} | {r['lorun_on_over_block']:.2f} | {r['lorun_on_over_merged']:.2f} |"
                  for r in rows], "lora_merge_cost.py")


if __name__ == "__main__":
    main()
