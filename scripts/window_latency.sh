#!/usr/bin/env bash
# The frame-to-screen latency the window adds, measured under Xvfb: encodes a 640x480 30 fps clip
# (a yellow ball on blue), plays it in real time in the window for SECONDS, closes the window with
# Ctrl-C and prints the pipeline's summary and the window's report. The report's latency_ms runs
# from a result leaving the inference thread to the end of the paint that shows its frame
# and its buffer swap (`--measure-window`: one extra pass right after each shown frame marks the end).
#
# Usage: scripts/window_latency.sh [SECONDS=20] [RENDERER=glow] [more shiftlive play flags...]
#   SHIFTLIVE_BIN  the binary (default target/debug/shiftlive; build it first)
#   SHOT=path.png  also save a screenshot of the screen half-way through
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
renderer=${2:-glow}
shift $(($# < 2 ? $# : 2))
bin=$(realpath "${SHIFTLIVE_BIN:-target/debug/shiftlive}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -m 700 "$work/xdg"
gst-launch-1.0 -q videotestsrc num-buffers=$((seconds * 30 + 90)) pattern=ball \
  foreground-color=0xffffd000 background-color=0xff2060a0 \
  ! video/x-raw,format=I420,width=640,height=480,framerate=30/1 \
  ! x264enc speed-preset=ultrafast ! mp4mux ! filesink location="$work/clip.mp4"
shot="" rest=$seconds
if [ -n "${SHOT:-}" ]; then
  shot="sleep $((seconds / 2)); import -window root '$(realpath -m "$SHOT")'"
  rest=$((seconds - seconds / 2))
fi
XDG_RUNTIME_DIR="$work/xdg" xvfb-run -a -s "-screen 0 1280x720x24" sh -c "
  '$bin' play '$work/clip.mp4' --realtime --renderer $renderer --measure-window $* >'$work/out.jsonl' 2>'$work/err.log' &
  pid=\$!
  $shot
  sleep $rest
  kill -INT \$pid
  wait \$pid" || { cat "$work/err.log" >&2; exit 1; }
grep -E '"(summary|window)"' "$work/out.jsonl"
