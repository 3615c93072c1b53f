# The README's two commands are `make demo` and `make test`; both set the machine up first.
.PHONY: setup demo test golden bench reference clean

CARGO ?= cargo

setup:
	bash scripts/setup.sh

# Until the live pipeline lands, the demo prints the default online model's cost table.
demo: setup
	$(CARGO) run --release --quiet -- profile

test: setup
	$(CARGO) test --all-targets
	# The core (model, online, train) must build without GStreamer or a window.
	$(CARGO) check --no-default-features --lib --tests

# Python torch venv for the reference scripts (4.7 GB, opt-in).
reference:
	bash scripts/setup.sh --reference

# Regenerates the golden data of tests/golden from the Python reference.
golden: reference
	.venv-ref/bin/python tests/golden/make_golden.py

clean:
	$(CARGO) clean
