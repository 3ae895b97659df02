# The two commands a newcomer needs: `make demo` and `make test`. Both set everything up first.
VENV := .venv
BIN := $(VENV)/bin
.PHONY: setup demo test lint test-heavy test-minimal clean gpu-check

setup:
	@bash scripts/setup_env.sh

demo: setup
	@bash scripts/demo.sh

lint: setup
	$(BIN)/ruff check .

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

# Slow cases (bigger inputs, multi-process runs) that CI skips.
test-heavy: setup
	$(BIN)/python -m pytest -q -m heavy

# The suite as on the GPU validation box (no nvidia-dali, ffcv, PyTurboJPEG: stubs hide them); not in CI.
test-minimal: setup
	@bash scripts/test_minimal.sh

# On a GPU machine, from a fresh checkout: install without deps, CUDA tests, kernel/train figures (<= 8 min).
gpu-check:
	@bash scripts/gpu_check.sh

clean:
	rm -rf runs/demo build *.egg-info
