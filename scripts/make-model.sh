#!/usr/bin/env bash
# Reproduces the default online model and the demo clip in assets/ from scratch (seeded, CPU):
#   1. `shiftlive synth`: 60 videos per class of the nine motion classes, 32 frames of 64x64;
#   2. `shiftlive train --preset tsm_online_tiny` on split 1 (uni-directional TSM, ResNet-18 at
#      width 16, dense clips of 8 frames 4 apart, so it runs live at stride 4); the best validation
#      model (weights, config, labels, preprocessing, stride; about 2.8 MB) is copied to
#      assets/models/motion-tsm-r18-tiny.safetensors;
#   3. `shiftlive synth --demo`: assets/demo/motion-demo.avi, each class for 100 frames, with
#      motion-demo.json saying which frames show which class.
# About 5 minutes on 2 cores. BIN (the release binary, built if missing), OUT (runs/model).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-target/release/shiftlive}
OUT=${OUT:-runs/model}
if [[ ! -x "$BIN" ]]; then
    cargo build --release --quiet
fi
rm -rf "$OUT"
mkdir -p "$OUT" assets/models assets/demo
"$BIN" synth --out "$OUT/data" --per-class 60 --frames 32 --size 64 --seed 1
"$BIN" train --preset tsm_online_tiny --data "$OUT/data" --split 1 --out "$OUT/run" --seed 1 \
    --live-stride 4 --device cpu --threads 2 --workers 2 --quiet | tee "$OUT/outcome.json"
cp "$OUT/run/best.safetensors" assets/models/motion-tsm-r18-tiny.safetensors.part
mv assets/models/motion-tsm-r18-tiny.safetensors.part assets/models/motion-tsm-r18-tiny.safetensors
"$BIN" synth --demo assets/demo/motion-demo.avi --segment-frames 100 --size 64 --seed 2 --quality 85
"$BIN" eval --model assets/models/motion-tsm-r18-tiny.safetensors --data "$OUT/data" --split 1 \
    --device cpu --threads 2 --quiet --online
