# wdiff: two commands on a fresh machine.
#   make demo   set up, then run the main job on the bundled clip with the built-in default
#   make test   set up, then run the tests
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
STAMP = $(VENV)/.installed
DEMO_OUT ?= demo-output

.PHONY: setup test test-all demo lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

test: setup
	$(BIN)/python -m pytest -q

demo: setup
	mkdir -p $(DEMO_OUT)
	$(BIN)/wdiff info builtin:bunny
	$(BIN)/wdiff flow builtin:bunny -o $(DEMO_OUT)/bunny.flows.safetensors \
		--viz $(DEMO_OUT)/bunny.flow.mp4 --overwrite
	$(BIN)/wdiff warp-noise builtin:bunny --method gp --grid 8 --overwrite \
		-o $(DEMO_OUT)/bunny.noise-gp.safetensors --stats $(DEMO_OUT)/bunny.noise-gp.json \
		--viz $(DEMO_OUT)/bunny.noise.mp4
	@echo "demo outputs are in $(DEMO_OUT)/"

lint: setup
	$(BIN)/ruff check wdiff tests benchmarks scripts
	$(BIN)/ruff format --check wdiff tests benchmarks scripts

clean:
	rm -rf $(DEMO_OUT) .pytest_cache .ruff_cache
