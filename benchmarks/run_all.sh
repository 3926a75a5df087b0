#!/usr/bin/env bash
# Every benchmark behind benchmarks/RESULTS.md, one after the other (they share the CPU:
# never run two at once), logs in results/. About 2 hours on 2 CPU cores; the teacher of
# each data set is trained once and cached in .cache/.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p results
run() { local log=$1; shift; echo "== python $*"; python "$@" 2>&1 | grep --line-buffered -v -i "warning" | tee "results/$log.log"; }
run kd_vs_plain_synthetic kd_vs_plain.py --data synthetic
run diswot_correlation_synthetic diswot_correlation.py --data synthetic --candidates 12 --epochs 3
run diswot_correlation_digits diswot_correlation.py --data digits --candidates 12 --epochs 6
run prune_kd_synthetic prune_kd.py --data synthetic --distill-epochs 5 --finetune-epochs 2
run prune_kd_digits prune_kd.py --data digits
run quantize_kd_synthetic quantize_kd.py --data synthetic --distill-epochs 5 --qat-epochs 2
run int8_bn_fold int8_bn_fold.py
run qat_recipe_resnet_0 qat_recipe.py --seeds 0
run qat_recipe_resnet_1 qat_recipe.py --seeds 1 --recipes "old default" "SGD 5e-4, 3 ep"
run int8_hardswish int8_hardswish.py
run latency_prediction latency_prediction.py
run search_speed search_speed.py
run pipeline_digits pipeline_digits.py
