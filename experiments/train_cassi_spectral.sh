#!/bin/bash
# The pair: LoRun-9 (adapters + step scales, base frozen) and Block-9 (all weights) fine-tuned side by side from their
# published checkpoints with recipes/lorun/cassi/spectral.yaml (equal steps and batch), 1 thread each.
cd "$(dirname "$0")/.." && . .venv/bin/activate
export OMP_NUM_THREADS=1
fit() {  # $1 = model recipe, $2 = published checkpoint, $3 = lr, $4 = run folder
  zoo fit --config recipes/_base/trainer.yaml --config recipes/lorun/cassi/$1 --config recipes/lorun/cassi/continue.yaml \
    --config recipes/lorun/cassi/spectral.yaml "--model.init_args.model_config={mask_init: checkpoint, mask_size: [256, 256]}" \
    --model.init_args.init_weights=$2 --model.init_args.lr=$3 --trainer.default_root_dir=$4 --trainer.enable_progress_bar=false
}
fit phase2.yaml lorun-cassi-9stg 8.0e-4 runs/cassi_spectral/lorun > runs/cassi_spectral/lorun.log 2>&1 &
fit block9.yaml block9-cassi 2.0e-4 runs/cassi_spectral/block9 > runs/cassi_spectral/block9.log 2>&1 &
wait
