#!/usr/bin/env bash
# One prepared session on a CUDA GPU: the mixed-precision tests, then groups of GPU training stages continued side by
# side, every run of a group with the same number of steps, sized from a throughput calibration to fit TRAIN_SECONDS.
# A run is a lineage stage (experiments/lineage/*.yaml): its recipes + overrides come from experiments/lineage.py.
#
#   ZOO_DATA=<data root> OUT=<results folder> TRAIN_SECONDS=400 PAIRS=lorun bash experiments/gpu_session.sh
#
# PAIRS picks the groups: lorun (default) = LoRun-9 vs Block-9 for CS 25 % and SD-CASSI (data: images/Train400,
# images/T91, cassi/remote); ssopga = SSO-PGA vs its PGA twin for flash and WorldView pansharpening, plus the 4-band
# model alone (data: flash/faid32_half, pansharpen/full, pansharpen/reduced); or explicit groups of stage ids,
# runs of a group separated by spaces, groups by ';' (e.g. PAIRS="ssopga_flash_gpu ssopga_flash_pga_gpu").
# Writes to $OUT: env.txt (GPU, driver, versions), cuda_tests.log (pytest tests/test_cuda.py), session.log
# (calibration rates and the step budgets chosen) and gpu_runs.tar.gz (runs/<name>-gpu*/{export,logs}: weights,
# config, learning curve, CSV logs). Export and bench the runs afterwards on any machine (README, "GPU training").
set -u
OUT=${OUT:-runs/gpu_session}
TRAIN_SECONDS=${TRAIN_SECONDS:-400}
CAL_STEPS=${CAL_STEPS:-40}
MIN_STEPS=${MIN_STEPS:-100}
read -r -a EXTRA <<< "${EXTRA_ARGS:-}"   # e.g. a dry run on a CPU: EXTRA_ARGS="--data.init_args.batch_size=2"
# INIT_DIR: a second round starts run <stage> from INIT_DIR/<stage>.safetensors where that file exists
PY=${PYTHON:-python3}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
ZOO=("$PY" -m zoo.cli.main)
case "${PAIRS:-lorun}" in
  lorun) RUNSETS=("lorun_cs_phase2_r25_gpu block9_cs_r25_gpu" "lorun_cassi_phase2_gpu block9_cassi_gpu") ;;
  ssopga) RUNSETS=("ssopga_flash_gpu ssopga_flash_pga_gpu" "ssopga_pansharpen_wv_gpu ssopga_pansharpen_wv_pga_gpu"
                   "ssopga_pansharpen_4band_gpu") ;;
  *) IFS=';' read -r -a RUNSETS <<< "$PAIRS" ;;
esac
declare -A STAGE_ARGS   # stage id -> its zoo fit arguments, one per line
for set_ in "${RUNSETS[@]}"; do for r in $set_; do
  STAGE_ARGS[$r]=$("$PY" experiments/lineage.py args "$r") || { echo "PAIRS names stage $r, which no experiments/lineage/*.yaml holds" >&2; exit 2; }
done; done
stage_args() { mapfile -t ARGS <<< "${STAGE_ARGS[$1]}"; }
log() { echo "[$(date +%T)] $*" | tee -a "$OUT/session.log"; }

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  "$PY" -c "import torch, lightning; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'lightning', lightning.__version__)"
  nproc; } > "$OUT/env.txt" 2>&1
log "env: $(tr '\n' ' ' < "$OUT/env.txt")"

# 1. the CUDA mixed-precision tests run beside the training (the GPU has room for both)
if [ "${SKIP_TESTS:-0}" = 1 ]; then true & else
  timeout "${TEST_SECONDS:-480}" "$PY" -m pytest tests/test_cuda.py -q -s -rs -p no:cacheprovider --timeout 180 \
    > "$OUT/cuda_tests.log" 2>&1 &
fi
TESTS=$!

# 2. calibration: every run for CAL_STEPS steps at once (the contention of the real run), no validation
CAL=runs/gpu_calibration
[ "${REUSE_CALIBRATION:-0}" = 1 ] || rm -rf "$CAL"
mkdir -p "$CAL"
CAL_PIDS=()
for set_ in "${RUNSETS[@]}"; do for r in $set_; do
  [ -f "$CAL/$r.json" ] && continue
  stage_args "$r"
  "${ZOO[@]}" fit "${ARGS[@]}" --trainer.max_steps="$CAL_STEPS" --trainer.limit_val_batches=0 \
    --trainer.num_sanity_val_steps=0 --trainer.logger=false --trainer.enable_progress_bar=false \
    --trainer.default_root_dir="$CAL/$r" --trainer.callbacks=zoo.training.ThroughputLog \
    --trainer.callbacks.path="$CAL/$r.json" "${EXTRA[@]}" > "$CAL/$r.log" 2>&1 &
  CAL_PIDS+=($!)
done; done
for p in "${CAL_PIDS[@]}"; do wait "$p"; done
T_START=$(date +%s)

# 3. equal steps within a group: the slowest run's rate x the time left, with a margin for validation
PIDS=()
for set_ in "${RUNSETS[@]}"; do
  read -r -a runs <<< "$set_"
  jsons=(); for r in "${runs[@]}"; do jsons+=("$CAL/$r.json"); done
  steps=$("$PY" - "$TRAIN_SECONDS" "${jsons[@]}" <<'EOF'
import json, sys
rates = [json.load(open(p))["steps_per_s"] for p in sys.argv[2:]]
n = int(min(rates) * float(sys.argv[1]) * 0.85)
print(n // 50 * 50 if n > 500 else n)
EOF
)
  if [ -z "$steps" ] || [ "$steps" -lt "$MIN_STEPS" ]; then
    log "group $set_: calibration failed or too slow (steps='$steps'); skipped. Logs: $(for r in "${runs[@]}"; do tail -n 3 "$CAL/$r.log"; done)"
    continue
  fi
  log "group $set_: rates $(cat "${jsons[@]}" | tr -d '\n ') -> max_steps=$steps each"
  for r in "${runs[@]}"; do
    init=(); [ -f "${INIT_DIR:-/nonexistent}/$r.safetensors" ] && init=(--model.init_args.init_weights="$INIT_DIR/$r.safetensors")
    stage_args "$r"
    "${ZOO[@]}" fit "${ARGS[@]}" --trainer.max_steps="$steps" "${init[@]}" \
      --trainer.max_time="$(printf '00:00:%02d:%02d' $(( (TRAIN_SECONDS + 60) / 60 )) $(( (TRAIN_SECONDS + 60) % 60 )))" --trainer.enable_progress_bar=false \
      "${EXTRA[@]}" > "runs/train_$r.log" 2>&1 &
    PIDS+=($!)
  done
done
for p in "${PIDS[@]}"; do wait "$p" || log "a training run exited with an error (pid $p)"; done
log "training done in $(( $(date +%s) - T_START )) s"

for f in runs/*-gpu*/logs/version_*/metrics.csv; do [ -f "$f" ] && log "$f: $(tail -1 "$f")"; done
# the runs are packed before waiting for the tests, so a slow test cannot cost them
tar czf "$OUT/gpu_runs.tar.gz" runs/*-gpu*/export runs/*-gpu*/logs runs/train_*_gpu*.log "$CAL"/*.json "$CAL"/*.log 2>/dev/null
log "wrote $OUT/gpu_runs.tar.gz ($(du -h "$OUT/gpu_runs.tar.gz" | cut -f1))"
wait "$TESTS"
if [ -f "$OUT/cuda_tests.log" ]; then log "cuda tests: $(tail -n 1 "$OUT/cuda_tests.log")"; fi
