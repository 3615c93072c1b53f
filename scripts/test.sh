#!/usr/bin/env bash
# `make test`: sets the machine up, builds, runs every test, checks that the core builds without
# GStreamer or a window, and prints the time of each phase (and of each test binary) at the end,
# so a slow CI can be read without guessing.
set -uo pipefail
cd "$(dirname "$0")/.."

CARGO=${CARGO:-cargo}
log=$(mktemp -t shiftlive-test.XXXXXX)
trap 'rm -f "$log"' EXIT
phases=()
failed=0

# run NAME COMMAND...: runs a phase, records its wall time and whether it failed.
run() {
  local name=$1
  shift
  local start=$SECONDS
  echo "=== $name: $*" >&2
  if ! "$@"; then
    failed=1
    phases+=("$(printf '%-34s %6d s  FAILED' "$name" $((SECONDS - start)))")
    return 1
  fi
  phases+=("$(printf '%-34s %6d s' "$name" $((SECONDS - start)))")
}

run "setup (scripts/setup.sh)" bash scripts/setup.sh --export || { echo "setup failed" >&2; exit 1; }
# --workspace: shiftlive and the GStreamer plugin in gst/ (its Harness and gst-launch tests, about
# 30 s; they run the shiftlive binary this build makes, as `play --headless`).
run "build (deps + shiftlive + tests)" "$CARGO" test --workspace --all-targets --no-run
# The test binaries run one after another; their output is kept to time each one.
run "run the tests" bash -c "set -o pipefail; $CARGO test --workspace --all-targets --no-fail-fast 2>&1 | tee '$log'"
# The core (model, online, train) must build without GStreamer or a window. The library and the
# binary only: checking the test targets too would check the dev-dependencies (egui_kittest, wgpu,
# criterion) a second time, in check mode, for minutes, though the test build above compiled them.
run "core without GStreamer/window" "$CARGO" check --no-default-features --lib --bins

echo
echo "Phase times (wall clock, $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1)):"
printf '  %s\n' "${phases[@]}"
echo "Test binaries (cargo's own 'finished in' time):"
awk '/^ *Running /{name=$2} /^test result:/{for(i=1;i<=NF;i++) if($i=="in") t=$(i+1); sub(/s$/,"",t); printf "  %-34s %8.1f s\n", name, t}' "$log" | sort -k2 -n -r
echo "Total: $SECONDS s"
exit $failed
