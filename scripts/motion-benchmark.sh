#!/usr/bin/env bash
# The synthetic motion benchmark: `shiftlive synth` makes a UCF-101-layout set whose 9 classes differ
# only by motion; each model (TSN, bidirectional TSM, uni-directional TSM, MVF) is trained on split 1
# and evaluated on its test list. Ends with one JSON line per model:
#   {"model": "tsm", "classes": 9, "top1": 0.98, "mean_class_acc": 0.98, "train_seconds": 61.2, ...}
# TSN sees each frame alone and averages: it cannot tell motions apart and stays near chance (1/9);
# the temporal models should not.
#
# Settings (environment): OUT (runs/motion-benchmark), PER_CLASS (60 videos), FRAMES (32), SIZE (64),
# EPOCHS (the presets' 40), SEED (1), MODELS ("tsn tsm tsm_online mvf"), BIN (the release binary,
# built if missing), THREADS (2), WORKERS (2).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-runs/motion-benchmark}
PER_CLASS=${PER_CLASS:-60}
FRAMES=${FRAMES:-32}
SIZE=${SIZE:-64}
SEED=${SEED:-1}
MODELS=${MODELS:-"tsn tsm tsm_online mvf"}
THREADS=${THREADS:-2}
WORKERS=${WORKERS:-2}
BIN=${BIN:-target/release/shiftlive}

if [[ ! -x "$BIN" ]]; then
    cargo build --release --quiet
fi
mkdir -p "$OUT"
epochs=()
if [[ -n "${EPOCHS:-}" ]]; then epochs=(--epochs "$EPOCHS"); fi

if [[ ! -f "$OUT/data/synth.json" ]]; then
    "$BIN" synth --out "$OUT/data" --per-class "$PER_CLASS" --frames "$FRAMES" --size "$SIZE" --seed "$SEED" >&2
fi

results=()
for model in $MODELS; do
    dir="$OUT/$model"
    rm -rf "$dir"
    mkdir -p "$dir"
    start=$(date +%s.%N)
    "$BIN" train --preset "${model}_tiny" --data "$OUT/data" --split 1 --out "$dir" --seed "$SEED" \
        --threads "$THREADS" --workers "$WORKERS" --device cpu --quiet "${epochs[@]}" > "$dir/outcome.json"
    end=$(date +%s.%N)
    # The last epoch's weights (checkpoint.safetensors), not the best on the test list.
    "$BIN" eval --model "$dir/checkpoint.safetensors" --data "$OUT/data" --split 1 \
        --threads "$THREADS" --workers "$WORKERS" --device cpu --quiet > "$dir/eval.json"
    line=$(python3 - "$model" "$dir/outcome.json" "$dir/eval.json" "$start" "$end" <<'PY'
import json, sys
model, outcome, evaluation, start, end = sys.argv[1:]
o = json.load(open(outcome))
e = json.loads(open(evaluation).read().strip().splitlines()[-1])
print(json.dumps({"model": model, "arch": o["model"], "classes": o["classes"], "top1": round(e["top1"], 4),
                  "top5": round(e["top5"], 4), "mean_class_acc": round(e["mean_class_acc"], 4),
                  "test_videos": e["videos"], "epochs": o["epochs"],
                  "train_seconds": round(float(end) - float(start), 1)}))
PY
)
    echo "$line" >&2
    results+=("$line")
done
printf '%s\n' "${results[@]}"
