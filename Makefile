# The README's two commands are `make demo` and `make test`; both set the machine up first.
.PHONY: setup demo model test golden bench soak reference clean motion-benchmark window-latency \
	distill-benchmark dist-motion-benchmark kinetics-labels plugin

CARGO ?= cargo

setup:
	bash scripts/setup.sh

# The default model on the demo clip, in real time: in the window, or as JSON lines and the
# summary when there is no display.
demo: setup
	$(CARGO) run --release --quiet -- play assets/demo/motion-demo.avi \
		--model assets/models/motion-tsm-r18-tiny.safetensors --realtime

# Reproduces assets/models/motion-tsm-r18-tiny.safetensors and the demo clip (seeded, CPU, ~5 min).
model: setup
	$(CARGO) build --release --quiet
	bash scripts/make-model.sh

# Sets up, builds, runs every test, checks the core without GStreamer or a window, and prints
# the time of each phase and test binary (scripts/test.sh).
test:
	CARGO=$(CARGO) bash scripts/test.sh

# The GStreamer plugin (element tsmclassify): target/release/libgstshiftlive.so; load it with
# GST_PLUGIN_PATH=$(CURDIR)/target/release (README, 'GStreamer element').
plugin: setup
	$(CARGO) build --release -p gst-shiftlive

# Per-frame latency and the ratios of README's table (PyTorch comparison when .venv-ref exists).
bench: setup
	$(CARGO) run --release --quiet -- bench --threads 2

# The window's own latency under Xvfb (README's table): 30 s of a 30 fps clip in real time.
window-latency: setup
	$(CARGO) build --quiet
	bash scripts/window_latency.sh 30 glow

# Ten minutes of the live test pattern: RSS growth and latency.
soak: setup
	$(CARGO) build --release --quiet
	bash scripts/soak.sh 600

# Python torch venv for the reference scripts (4.7 GB, opt-in).
reference:
	bash scripts/setup.sh --reference

# Regenerates the golden data of tests/golden from the Python reference.
golden: reference
	.venv-ref/bin/python tests/golden/make_golden.py

clean:
	$(CARGO) clean

# The synthetic motion benchmark: synth, then train and evaluate TSN, TSM, online TSM and MVF
# (about 15 minutes on 2 cores); one JSON line per model at the end.
motion-benchmark: setup
	$(CARGO) build --release --quiet
	bash scripts/motion-benchmark.sh

# The motion benchmark's online TSM by one process and by 2 data-parallel ranks (Gloo on
# loopback; SYNC_BN=1 for synchronised BatchNorm): top-1 of each and their difference (<= 0.02).
dist-motion-benchmark: setup
	$(CARGO) build --release --quiet
	bash scripts/dist-motion-benchmark.sh

# Distillation on the motion set: a MobileNetV2 student from the labels alone, then distilled from
# the default model (same seed and schedule); one JSON line per run at the end.
distill-benchmark: setup
	$(CARGO) build --release --quiet
	bash scripts/distill-benchmark.sh

# Rewrites assets/labels/kinetics400.txt from the torchvision wheel on PyPI.
kinetics-labels:
	python3 scripts/kinetics400-labels.py
