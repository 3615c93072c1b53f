#!/usr/bin/env bash
# Knowledge distillation on the synthetic motion set: a small student (MobileNetV2 x0.5 with the
# uni-directional shift, preset tsm_mobilenet_v2_online_tiny) trained on split 1 of the make-model
# set (seed 1) twice, with the same seed and schedule: from the labels alone, and distilled from the
# shipped default model (ResNet-18 TSM at width 16, trained on the same split). Both evaluated on
# the test list with their own protocol. Ends with one JSON line per run:
#   {"run": "student", "top1": ..., "mean_class_acc": ..., "train_seconds": ...}
#
# Settings (environment): OUT (runs/distill), EPOCHS (15), SEED (1), TEACHER (the default model),
# TEMPERATURE (4), WEIGHT (0.5), BIN (the release binary, built if missing), THREADS (2).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-runs/distill}
EPOCHS=${EPOCHS:-15}
SEED=${SEED:-1}
TEACHER=${TEACHER:-assets/models/motion-tsm-r18-tiny.safetensors}
TEMPERATURE=${TEMPERATURE:-4}
WEIGHT=${WEIGHT:-0.5}
THREADS=${THREADS:-2}
BIN=${BIN:-target/release/shiftlive}

if [[ ! -x "$BIN" ]]; then
    cargo build --release --quiet
fi
mkdir -p "$OUT"
if [[ ! -f "$OUT/data/ucfTrainTestlist/classInd.txt" ]]; then
    "$BIN" synth --out "$OUT/data" --per-class 60 --frames 32 --size 64 --seed 1
fi
common=(--preset tsm_mobilenet_v2_online_tiny --data "$OUT/data" --split 1 --epochs "$EPOCHS"
        --seed "$SEED" --device cpu --threads "$THREADS" --workers 2 --quiet --eval-every "$EPOCHS")
results=()
for run in student distilled; do
    extra=()
    if [[ $run == distilled ]]; then
        extra=(--teacher "$TEACHER" --distill-temperature "$TEMPERATURE" --distill-weight "$WEIGHT")
    fi
    rm -rf "$OUT/$run"
    start=$(date +%s)
    "$BIN" train "${common[@]}" --out "$OUT/$run" "${extra[@]}" > "$OUT/$run.outcome.json"
    seconds=$(( $(date +%s) - start ))
    eval_line=$("$BIN" eval --model "$OUT/$run/checkpoint.safetensors" --data "$OUT/data" --split 1 \
        --device cpu --threads "$THREADS" --quiet)
    results+=("$(python3 -c 'import json,sys; e=json.loads(sys.argv[1]); print(json.dumps({"run": sys.argv[2], "top1": e["top1"], "mean_class_acc": e["mean_class_acc"], "videos": e["videos"], "train_seconds": round(float(sys.argv[3]), 1)}))' "$eval_line" "$run" "$seconds")")
done
printf '%s\n' "${results[@]}"
