#!/usr/bin/env bash
# Every benchmark, one after the other (they share the CPU: never run two at once), logs in results/.
# About 3 hours on 2 CPU cores; the teacher of each data set is trained once and cached in .cache/.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p results
run() { echo "== $*"; python "$@" 2>&1 | grep -v -i "warning" | tee "results/$(basename "$1" .py)${2:+_${2#--}}${3:+_$3}.log"; }
run pipeline_digits.py
run kd_vs_plain.py --data synthetic
run diswot_correlation.py --data synthetic
run diswot_correlation.py --data digits --epochs 10
run search_speed.py
run prune_kd.py --data synthetic
run prune_kd.py --data digits
run quantize_kd.py --data synthetic
run latency_prediction.py
