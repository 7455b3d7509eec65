#!/usr/bin/env bash
# Train every CS checkpoint stage by stage, then export them into checkpoints/ + the manifest.
# Usage: experiments/train_cs.sh [threads-per-run] [stage...]   (needs ZOO_DATA or ../shared/data)
# A run of this script trains lineage stages (experiments/lineage/*.yaml: recipes + overrides of each stage id, read by
# experiments/lineage.py); its own stage names group them:
# stages: phase1, pair25 (LoRun-9 r25 and Block-9 r25 side by side, same steps), pair1050,
#         cont25 (both r25 models continued for the same further steps), cont10, cont50, cont10b,
#         cont25b (both r25 models, 1500 more steps each), export;
#         after the GPU stage (experiments/gpu_session.sh, which starts from the published r25 checkpoints):
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
# fit STAGE_ID: zoo fit with the stage's recipes and overrides (a stage that loads a published name, e.g.
# init_weights=lorun-cs-r25, continues the checkpoint as it is now; its lineage `init` names the version it ran from)
fit() {
  local args; mapfile -t args < <(python experiments/lineage.py args "$1")
  zoo fit "${args[@]}" --trainer.enable_progress_bar=false > "runs/$1.log" 2>&1
}
recipe() { python experiments/lineage.py recipe "$1"; }
# export_pair LORUN_STAGE BLOCK9_STAGE: the r25 pair of one side-by-side stage; the lineage is copied back afterwards
export_pair() {
  zoo export-run "$(python experiments/lineage.py run-dir "$1")/export" --name lorun-cs-r25 --recipe "$(recipe "$1")" \
    --data "$DATA" --hardware "$HW" --dtype float16 --overwrite
  zoo export-run "$(python experiments/lineage.py run-dir "$2")/export" --name block9-cs-r25 --recipe "$(recipe "$2")" \
    --data "$DATA" --hardware "$HW" --dtype float16 --overwrite
  python experiments/lineage_to_manifest.py
  python experiments/merge_curves.py lorun-cs-r25 block9-cs-r25
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
    export25c) export_pair lorun_cs_phase2_r25_g18 block9_cs_r25_cont3 ;;
    export25d) export_pair lorun_cs_phase2_r25_joint block9_cs_r25_cont4 ;;
    export)
      INIT="phase 1: stage lorun_cs_phase1 (lorun-cs-base-r25, 2000 steps x 16 x 99x99); then the phase-2 stages (training.lineage)"
      for spec in "lorun-cs-r25:lorun_cs_phase2_r25" "block9-cs-r25:block9_cs_r25" "lorun-cs-r10:lorun_cs_phase2_r10" "lorun-cs-r50:lorun_cs_phase2_r50"; do
        name=${spec%%:*}; stage=${spec#*:}; run=$name
        if [ -f "runs/$name-cont/export/model.safetensors" ]; then run=$name-cont; stage=${stage}_cont; fi
        if [ -f "runs/$name-cont2/export/model.safetensors" ]; then run=$name-cont2; stage=${stage}2; fi
        [ -f "runs/$run/export/model.safetensors" ] || continue
        zoo export-run "runs/$run/export" --name "$name" --recipe "$(recipe "$stage")" --data "$DATA" --init "$INIT" \
          --hardware "$HW" --dtype float16 --overwrite
      done
      python experiments/lineage_to_manifest.py
      python experiments/merge_curves.py lorun-cs-r25 block9-cs-r25 lorun-cs-r10 lorun-cs-r50 ;;
  esac
done
