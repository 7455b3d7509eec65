#!/bin/bash
# Loss comparison: short Block-9 / LoRun-9 fine-tunes from the published checkpoints, equal steps, 1 thread each.
cd "$(dirname "$0")/../.." && . .venv/bin/activate
export OMP_NUM_THREADS=1
C=(--config recipes/_base/trainer.yaml)
S=(--config recipes/lorun/cassi/continue.yaml --config recipes/lorun/cassi/spectral.yaml "--model.init_args.model_config={mask_init: checkpoint, mask_size: [256, 256]}" --trainer.enable_progress_bar=false)
STEPS=${STEPS:-150}
# baselines: validation of the published weights (step 0)
zoo validate "${C[@]}" --config recipes/lorun/cassi/block9.yaml "${S[@]}" --model.init_args.init_weights=block9-cassi --trainer.default_root_dir=runs/cassi_spectral/val0_block9 > runs/cassi_spectral/val0_block9.log 2>&1 &
zoo validate "${C[@]}" --config recipes/lorun/cassi/phase2.yaml "${S[@]}" --model.init_args.init_weights=lorun-cassi-9stg --trainer.default_root_dir=runs/cassi_spectral/val0_lorun > runs/cassi_spectral/val0_lorun.log 2>&1
wait
run() {  # $1 = loss, $2 = model recipe, $3 = init, $4 = lr, $5 = tag
  zoo fit "${C[@]}" --config recipes/lorun/cassi/$2 "${S[@]}" --model.init_args.init_weights=$3 --model.init_args.loss=$1 \
    --model.init_args.lr=$4 --trainer.max_steps=$STEPS --model.init_args.schedule_steps=$STEPS \
    --trainer.default_root_dir=runs/cassi_spectral/cmp_$5 > runs/cassi_spectral/cmp_$5.log 2>&1
}
run rmse block9.yaml block9-cassi 2.0e-4 b9_rmse &
run rmse+sam block9.yaml block9-cassi 2.0e-4 b9_sam
wait
run rmse+rel block9.yaml block9-cassi 2.0e-4 b9_rel &
run rmse+sgrad block9.yaml block9-cassi 2.0e-4 b9_sgrad
wait
# √MSE + SAM at λ = 0.03
zoo fit --config recipes/_base/trainer.yaml --config recipes/lorun/cassi/block9.yaml --config recipes/lorun/cassi/continue.yaml \
  --config recipes/lorun/cassi/spectral.yaml "--model.init_args.model_config={mask_init: checkpoint, mask_size: [256, 256]}" \
  --trainer.enable_progress_bar=false --model.init_args.init_weights=block9-cassi --model.init_args.loss=rmse+sam \
  "--model.init_args.spectral_weights={sam: 0.03}" --model.init_args.lr=2.0e-4 --trainer.max_steps=$STEPS \
  --model.init_args.schedule_steps=$STEPS --trainer.default_root_dir=runs/cassi_spectral/cmp_b9_sam03 \
  > runs/cassi_spectral/cmp_b9_sam03.log 2>&1
echo done
