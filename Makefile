# atoll: every target sets itself up (a .venv with the project and its dev extras).
VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install chromium lint test demo bench bench-serve bench-batch bench-drift bench-compress bench-size clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Headless Chromium for the HTML report test (Debian's package: Playwright's own
# browser download cannot be fetched here); installed only when missing.
SUDO := $(shell [ "$$(id -u)" -ne 0 ] && command -v sudo)
chromium:
	@command -v chromium >/dev/null || ($(SUDO) apt-get update && $(SUDO) apt-get install -y chromium)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint chromium
	$(BIN)/pytest -n 2 --dist loadgroup

demo: $(STAMP)
	$(BIN)/atoll demo

bench: $(STAMP)
	$(BIN)/python bench/train.py

bench-serve: $(STAMP)
	$(BIN)/python bench/serve.py

bench-compress: $(STAMP)
	$(BIN)/python bench/compress.py

bench-size: $(STAMP)
	$(BIN)/python bench/size.py --install-sizes

bench-batch: $(STAMP)
	$(BIN)/python bench/batch.py

bench-drift: $(STAMP)
	$(BIN)/python bench/drift.py

clean:
	rm -rf $(VENV) atoll-demo .pytest_cache .mypy_cache .ruff_cache
