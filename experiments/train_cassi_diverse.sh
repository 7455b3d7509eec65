#!/bin/bash
# The pair: LoRun-9 (adapters + step scales, base frozen) and Block-9 (all weights) fine-tuned side by side from their
# published checkpoints with recipes/lorun/cassi/spectral.yaml + diverse.yaml (equal steps and batch), 1 thread each.
# STEPS=10 for a smoke run.
cd "$(dirname "$0")/.." && . .venv/bin/activate
export OMP_NUM_THREADS=1
OUT=${OUT:-runs/cassi_diverse}; mkdir -p "$OUT"
fit() {  # $1 = model recipe, $2 = published checkpoint, $3 = lr, $4 = run folder
  zoo fit --config recipes/_base/trainer.yaml --config recipes/lorun/cassi/$1 --config recipes/lorun/cassi/continue.yaml \
    --config recipes/lorun/cassi/spectral.yaml --config recipes/lorun/cassi/diverse.yaml \
    "--model.init_args.model_config={mask_init: checkpoint, mask_size: [256, 256]}" \
    --model.init_args.init_weights=$2 --model.init_args.lr=$3 --trainer.default_root_dir=$4 \
    --trainer.enable_progress_bar=false ${STEPS:+--trainer.max_steps=$STEPS --trainer.val_check_interval=$STEPS}
}
fit phase2.yaml lorun-cassi-9stg 8.0e-4 $OUT/lorun > $OUT/lorun.log 2>&1 &
fit block9.yaml block9-cassi 2.0e-4 $OUT/block9 > $OUT/block9.log 2>&1 &
wait
