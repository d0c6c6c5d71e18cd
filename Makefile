# atoll: every target sets itself up (a .venv with the project and its dev extras).
VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install lint test demo bench bench-serve bench-batch bench-compress bench-size clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
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

clean:
	rm -rf $(VENV) atoll-demo .pytest_cache .mypy_cache .ruff_cache
