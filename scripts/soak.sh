#!/usr/bin/env bash
# Soak run: the live test pattern at 30 fps through the default online model for DURATION seconds
# (default 600), headless. Samples the process's RSS every 10 s and prints its growth, then the
# pipeline's own summary (frames, drops, latency percentiles). Needs a release build.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-600}
bin=target/release/shiftlive
[ -x "$bin" ] || cargo build --release --quiet
out=$(mktemp -d)
"$bin" live --test-pattern ball --fps 30 --headless --threads 2 >"$out/frames.jsonl" 2>"$out/log.txt" &
pid=$!
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0; }
sleep 20 # warm-up: allocator and libtorch caches settle
first=$(rss)
echo "t=20s rss=${first} kB"
for ((t = 30; t <= duration; t += 10)); do
  sleep 10
  now=$(rss)
  echo "t=${t}s rss=${now} kB frames=$(wc -l <"$out/frames.jsonl")"
done
last=$(rss)
kill -INT "$pid"
wait "$pid" || true
echo "rss growth after warm-up: $(( (last - first) / 1024 )) MB ($first kB -> $last kB)"
tail -n 1 "$out/frames.jsonl"
