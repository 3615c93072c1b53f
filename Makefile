# The README's two commands are `make demo` and `make test`; both set the machine up first.
.PHONY: setup demo test golden bench soak reference clean window-latency

CARGO ?= cargo

setup:
	bash scripts/setup.sh

# Until the live pipeline lands, the demo prints the default online model's cost table.
demo: setup
	$(CARGO) run --release --quiet -- profile

test: setup
	$(CARGO) test --all-targets
	# The core (model, online, train) must build without GStreamer or a window.
	$(CARGO) check --no-default-features --all-targets

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
