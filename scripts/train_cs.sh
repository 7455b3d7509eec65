#!/usr/bin/env bash
# Train every CS checkpoint with its recipe, then export them into checkpoints/ + the manifest.
# Usage: scripts/train_cs.sh [threads-per-run] [stage...]   (needs ZOO_DATA or ../shared/data)
# stages: phase1, pair25 (LoRun-9 r25 and Block-9 r25 side by side, same steps), pair1050,
#         cont25 (both r25 models continued for the same further steps), cont10, cont50, cont10b,
#         cont25b (both r25 models, 1500 more steps each), export;
#         after the GPU stage (scripts/gpu_session.sh, which starts from the published r25 checkpoints):
#         cont25c (LoRun-9 r25 with its adapters grown to γ = 18, and Block-9, 3000 more steps each, side
#         by side, from the published checkpoints), export25c (exports those two); then cont25d (LoRun-9 r25 with its
#         base unfrozen at a fifth of the adapters' rate, and Block-9, 4500 more steps each, side by side), export25d
set -euo pipefail
cd "$(dirname "$0")/.."
T=${1:-1}; shift || true
STAGES=${*:-phase1 pair25 pair1050 cont25 cont10 cont50 cont10b cont25b export}
export OMP_NUM_THREADS=$T MKL_NUM_THREADS=$T
HW="$(lscpu | sed -n 's/^Model name: *//p' | head -1), ${T} thread(s) per run, 2-core VM shared with other jobs"
DATA="Train400 + T91 (luminance, random crops, 8 flips/rotations); validation: 8 held-out training images; never Set11/BSD68"
fit() { zoo fit --config "recipes/$1.yaml" --trainer.enable_progress_bar=false > "runs/$1.log" 2>&1; }
# export_pair LORUN_RUN LORUN_RECIPE BLOCK9_RUN BLOCK9_RECIPE: the r25 pair of one side-by-side stage
export_pair() {
  zoo export "runs/$1/export" --name lorun-cs-r25 --recipe "recipes/$2.yaml" --data "$DATA" --hardware "$HW" \
    --dtype float16 --overwrite
  zoo export "runs/$3/export" --name block9-cs-r25 --recipe "recipes/$4.yaml" --data "$DATA" --hardware "$HW" \
    --dtype float16 --overwrite
  python scripts/merge_curves.py lorun-cs-r25 block9-cs-r25
}
mkdir -p runs
for st in $STAGES; do
  case $st in
    phase1) fit lorun_cs_phase1 ;;
    pair25) fit lorun_cs_phase2_r25 & fit block9_cs_r25 & wait ;;
    lorun25) fit lorun_cs_phase2_r25 ;;
    pair1050) fit lorun_cs_phase2_r10 & fit lorun_cs_phase2_r50 & wait ;;
    cont25) fit lorun_cs_phase2_r25_cont & fit block9_cs_r25_cont & wait ;;
    cont10) fit lorun_cs_phase2_r10_cont ;;
    cont50) fit lorun_cs_phase2_r50_cont ;;
    cont10b) fit lorun_cs_phase2_r10_cont2 ;;
    cont25b) fit lorun_cs_phase2_r25_cont2 & fit block9_cs_r25_cont2 & wait ;;
    cont25c) fit lorun_cs_phase2_r25_g18 & fit block9_cs_r25_cont3 & wait ;;
    cont25d) fit lorun_cs_phase2_r25_joint & fit block9_cs_r25_cont4 & wait ;;
    export25c) export_pair lorun-cs-r25-g18 lorun_cs_phase2_r25_g18 block9-cs-r25-cont3 block9_cs_r25_cont3 ;;
    export25d) export_pair lorun-cs-r25-joint lorun_cs_phase2_r25_joint block9-cs-r25-cont4 block9_cs_r25_cont4 ;;
    export)
      INIT="phase 1: recipes/lorun_cs_phase1.yaml (lorun-cs-base-r25, 2000 steps x 16 x 99x99); then the phase-2 recipe (and its _cont)"
      for spec in "lorun-cs-r25:lorun_cs_phase2_r25" "block9-cs-r25:block9_cs_r25" "lorun-cs-r10:lorun_cs_phase2_r10" "lorun-cs-r50:lorun_cs_phase2_r50"; do
        name=${spec%%:*}; recipe=${spec#*:}; run=$name
        if [ -f "runs/$name-cont/export/model.safetensors" ]; then run=$name-cont; recipe=${recipe}_cont; fi
        if [ -f "runs/$name-cont2/export/model.safetensors" ]; then run=$name-cont2; recipe=${recipe}2; fi
        [ -f "runs/$run/export/model.safetensors" ] || continue
        zoo export "runs/$run/export" --name "$name" --recipe "recipes/$recipe.yaml" --data "$DATA" --init "$INIT" \
          --hardware "$HW" --dtype float16 --overwrite
      done
      python scripts/merge_curves.py lorun-cs-r25 block9-cs-r25 lorun-cs-r10 lorun-cs-r50 ;;
  esac
done
