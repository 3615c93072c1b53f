#!/usr/bin/env bash
# The motion benchmark's online TSM (tsm_online_tiny, 40 epochs, seed 1) trained by one process and
# by a data-parallel job of RANKS ranks on this machine (Gloo on loopback, launched with torchrun's
# environment), the same global batch (the preset's 8: 8/RANKS clips a rank), each evaluated on
# the test list. Ends with one JSON line per run and one comparing them:
#   {"run": "2 ranks", "top1": 0.98, "train_seconds": 170.1, "clips_per_s": 12.3, ...} (clips/s: the job's, median epoch)
#   {"compare": "2 ranks vs 1 process", "top1_difference": 0.0, "within_0_02": true}
# and exits non-zero when the top-1 differs by more than 0.02.
#
# Settings (environment): OUT (runs/dist-motion-benchmark), RANKS (2), EPOCHS (the preset's 40),
# SYNC_BN (1: add --sync-bn to the ranks' run), REUSE_ONE (1: take the one-process run of an
# earlier call in OUT), INIT (a checkpoint to fine-tune from, e.g. the shipped
# assets/models/motion-tsm-r18-tiny.safetensors; default: from scratch), DATA_SEED (the synthetic
# set's seed, 1), BIN (the release binary, built if missing), PORT (29517). The set is the motion benchmark's (60 videos a class, 32 frames of 64 px, seed 1).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-runs/dist-motion-benchmark}
RANKS=${RANKS:-2}
PORT=${PORT:-29517}
BIN=${BIN:-target/release/shiftlive}
threads=$(nproc)
per_rank_threads=$(( threads / RANKS > 0 ? threads / RANKS : 1 ))
per_rank_batch=$(( 8 / RANKS ))
if (( per_rank_batch * RANKS != 8 )); then
    echo "dist-motion-benchmark: RANKS must divide the preset's batch of 8 (got $RANKS)" >&2
    exit 2
fi
if [[ ! -x "$BIN" ]]; then
    cargo build --release --quiet
fi
epochs=()
if [[ -n "${EPOCHS:-}" ]]; then epochs=(--epochs "$EPOCHS"); fi
sync=()
if [[ "${SYNC_BN:-0}" == "1" ]]; then sync=(--sync-bn); fi
mkdir -p "$OUT"
if [[ ! -f "$OUT/data/synth.json" ]]; then
    "$BIN" synth --out "$OUT/data" --per-class 60 --frames 32 --size 64 --seed "${DATA_SEED:-1}" >&2
fi
init=()
if [[ -n "${INIT:-}" ]]; then init=(--init "$INIT"); fi
common=(train --preset tsm_online_tiny --data "$OUT/data" --split 1 --seed 1 --workers 1
        --device cpu --quiet "${epochs[@]}" "${init[@]}")

# report NAME DIR START END: the run's JSON line (top-1 of its last-epoch weights on the test list).
report() {
    local name=$1 dir=$2 start=$3 end=$4
    "$BIN" eval --model "$dir/checkpoint.safetensors" --data "$OUT/data" --split 1 \
        --threads "$threads" --device cpu --quiet > "$dir/eval.json"
    python3 - "$name" "$dir" "$start" "$end" <<'PY'
import json, sys
name, d, start, end = sys.argv[1:]
e = json.loads(open(f"{d}/eval.json").read().strip().splitlines()[-1])
records = [json.loads(l) for l in open(f"{d}/metrics.jsonl")]
seconds = float(end) - float(start)
# The job's training clips/s (all ranks), median over the epochs after the first two (decoding
# is cached by then).
rates = sorted(r["clips_per_second"] for r in records[2:] or records)
print(json.dumps({"run": name, "top1": round(e["top1"], 4), "mean_class_acc": round(e["mean_class_acc"], 4),
                  "test_videos": e["videos"], "epochs": len(records),
                  "train_top1_last": records[-1].get("train_top1"),
                  "train_seconds": round(seconds, 1),
                  "clips_per_s": round(rates[len(rates) // 2], 2)}))
PY
}

one="$OUT/one"
if [[ "${REUSE_ONE:-0}" == "1" && -f "$one.json" ]]; then
    line1=$(cat "$one.json")
else
    rm -rf "$one"
    start=$(date +%s.%N)
    "$BIN" "${common[@]}" --out "$one" --threads "$threads" > "$one.outcome.json"
    end=$(date +%s.%N)
    line1=$(report "1 process" "$one" "$start" "$end")
    echo "$line1" > "$one.json"
fi
echo "$line1"

many="$OUT/ranks$RANKS"
rm -rf "$many"
start=$(date +%s.%N)
pids=()
for ((r = 0; r < RANKS; r++)); do
    RANK=$r WORLD_SIZE=$RANKS LOCAL_RANK=$r MASTER_ADDR=127.0.0.1 MASTER_PORT=$PORT \
        "$BIN" "${common[@]}" --out "$many" --threads "$per_rank_threads" \
        --batch-size "$per_rank_batch" "${sync[@]}" > "$many.rank$r.json" &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
end=$(date +%s.%N)
line2=$(report "$RANKS ranks${sync:+ (sync BN)}" "$many" "$start" "$end")
echo "$line2"

python3 - "$line1" "$line2" "$RANKS" <<'PY'
import json, sys
a, b, ranks = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
d = abs(a["top1"] - b["top1"])
print(json.dumps({"compare": f"{ranks} ranks vs 1 process", "top1_difference": round(d, 4),
                  "within_0_02": d <= 0.02}))
sys.exit(0 if d <= 0.02 else 1)
PY
