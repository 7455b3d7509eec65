#!/bin/bash
# Second diversity stage: both of the pair continue from their first diverse-stage exports
# (experiments/train_cassi_diverse.sh) for 2000 steps, side by side, 1 thread each; LoRun-9 now trains its shared
# base with the adapters at a tenth of their rate (freeze_base false, base_lr_scale 0.1; the paper keeps it frozen):
# the frozen base had learnt the Otsu spectra, and the adapters alone plateaued after 200 steps of the first stage.
# (The base at the adapters' full rate, lr 4e-4, lost 1.5-2.5 dB of val/real in 600 steps: stopped, not adopted.)
# LORUN_ONLY=1 runs LoRun-9 alone. A third stage continues from the second's exports:
#   IN=runs/cassi_diverse2 OUT=runs/cassi_diverse3 experiments/train_cassi_diverse2.sh
# and a fourth at half the rates (LoRun-9 peaked mid-way through the third):
#   IN=runs/cassi_diverse3 OUT=runs/cassi_diverse4 LORUN_LR=4.0e-4 BLOCK_LR=1.0e-4 experiments/train_cassi_diverse2.sh
# and a fifth with per-pixel spectral peaks in the mixture (EXTRA: more --config/flags for both of the pair):
#   IN=runs/cassi_diverse4 OUT=runs/cassi_bump LORUN_LR=4.0e-4 BLOCK_LR=1.0e-4 \
#   EXTRA="--config recipes/lorun/cassi/bump.yaml" experiments/train_cassi_diverse2.sh
cd "$(dirname "$0")/.." && . .venv/bin/activate
export OMP_NUM_THREADS=1
IN=${IN:-runs/cassi_diverse}; OUT=${OUT:-runs/cassi_diverse2}; mkdir -p "$OUT"
LORUN_LR=${LORUN_LR:-8.0e-4}; BLOCK_LR=${BLOCK_LR:-2.0e-4}
fit() {  # $1 = model recipe, $2 = start weights, $3 = lr, $4 = run folder, rest: extra flags
  zoo fit --config recipes/_base/trainer.yaml --config recipes/lorun/cassi/$1 --config recipes/lorun/cassi/continue.yaml \
    --config recipes/lorun/cassi/spectral.yaml --config recipes/lorun/cassi/diverse.yaml \
    "--model.init_args.model_config={mask_init: checkpoint, mask_size: [256, 256]}" \
    --model.init_args.init_weights=$2 --model.init_args.lr=$3 --trainer.default_root_dir=$4 \
    --trainer.max_steps=2000 --trainer.max_epochs=8 --trainer.enable_progress_bar=false $EXTRA "${@:5}"
}
fit phase2.yaml $IN/lorun/export/model.safetensors $LORUN_LR $OUT/lorun --model.init_args.freeze_base=false \
  --model.init_args.base_lr_scale=0.1 > $OUT/lorun.log 2>&1 &
[ -n "$LORUN_ONLY" ] || fit block9.yaml $IN/block9/export/model.safetensors $BLOCK_LR $OUT/block9 > $OUT/block9.log 2>&1 &
wait
