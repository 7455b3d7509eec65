#!/usr/bin/env bash
# Train the super-resolution checkpoints stage by stage, then export them into checkpoints/ + the manifest.
# Usage: experiments/train_sr.sh [threads-per-run] [stage...]   (needs ZOO_DATA or ../shared/data)
# stages: phase1 (lorun_sr_phase1), pair (lorun_sr_phase2 and block9_sr side by side, same steps and batches),
#         export (lorun-sr-x4 + its x2/x3 aliases and block9-sr-x4, float16), bench (the README's numbers).
set -euo pipefail
cd "$(dirname "$0")/.."
T=${1:-1}; shift || true
STAGES=${*:-phase1 pair export bench}
export OMP_NUM_THREADS=$T MKL_NUM_THREADS=$T
HW="$(lscpu | sed -n 's/^Model name: *//p' | head -1), ${T} thread(s) + 1 loader worker per run, 2-core VM shared with other jobs"
DATA="T91 + BSD200 HR crops (96², 8 flips/rotations) degraded on the fly: one scale per batch (x2 25 %, x3 15 %, x4 60 %), per image MATLAB bicubic (50 %), isotropic / anisotropic Gaussian (20 % each) or motion (10 %) kernel on the LR grid, Gaussian noise (σ = 0 for half, else U(0, 0.03]), 8-bit LR; validation: 8 held-out training images (x4 bicubic); never Set5/Set14/BSD100/CBSD68"
NOTES="Budget: 4000 phase-1 steps × 8 crops + 400 phase-2 steps × 4 crops on one CPU thread; USRNet-class SR networks train for hundreds of thousands of GPU steps, so this is well under 1 % of the papers' budget (learning curve below)."
fit() {
  local args; mapfile -t args < <(python experiments/lineage.py args "$1")
  zoo fit "${args[@]}" --trainer.enable_progress_bar=false > "runs/$1.log" 2>&1
}
recipe() { python experiments/lineage.py recipe "$1"; }
mkdir -p runs
for st in $STAGES; do
  case $st in
    phase1) fit lorun_sr_phase1 ;;
    pair) fit lorun_sr_phase2 & fit block9_sr & wait ;;
    export)
      python experiments/sr_scale_aliases.py runs/lorun-sr-x4/export
      for s in 2 3 4; do
        zoo export-run runs/lorun-sr-x$s/export --name lorun-sr-x$s --recipe "$(recipe lorun_sr_phase2)" --data "$DATA" \
          --hardware "$HW" --notes "$NOTES" --dtype float16
      done
      zoo export-run runs/block9-sr-x4/export --name block9-sr-x4 --recipe "$(recipe block9_sr)" --data "$DATA" \
        --hardware "$HW" --notes "$NOTES" --dtype float16
      python experiments/lineage_to_manifest.py ;;
    bench)
      zoo bench lorun-sr-x2 lorun-sr-x3 lorun-sr-x4 block9-sr-x4 --dataset Set5 --dataset Set14 --dataset BSD100 --limit 42 \
        --out results/sr/bench --record --threads "$T" &
      zoo bench lorun-sr-x4 block9-sr-x4 --dataset CBSD68-12k-x4 --dataset CBSD68-12k-x4-n2.55 --limit 24 \
        --no-costs --no-grids --out results/sr/kernels12 --threads "$T" &
      wait
      python experiments/studies/sr_kernels.py
      python experiments/studies/sr_costs.py --out results/sr/costs --threads "$T"
      python experiments/studies/sr_tiling.py --out results/sr/tiling --threads "$T"
      python scripts/readme_results.py ;;
    *) echo "unknown stage $st" >&2; exit 2 ;;
  esac
done
