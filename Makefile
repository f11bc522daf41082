# Two entry points; each sets everything up from nothing (Debian, Python 3.11).
#   make demo   create .venv-demo, install ktrans with what a user needs (no torch, no
#               Keras: the `data` extra only), run it on the bundled examples
#   make test   create .venv, install ktrans with the dev extras, run the whole suite

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_VENV  := .venv-demo
DEMO_BIN   := $(DEMO_VENV)/bin
DEMO_STAMP := $(DEMO_VENV)/.installed

.PHONY: demo test lint graphviz chromium clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

$(DEMO_BIN)/python:
	$(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_BIN)/python -m pip install -q --upgrade pip

$(DEMO_STAMP): pyproject.toml | $(DEMO_BIN)/python
	$(DEMO_BIN)/python -m pip install -q -e '.[data]'
	touch $(DEMO_STAMP)

graphviz:
	@command -v dot >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null; \
	  else \
	    echo "Graphviz's 'dot' is missing: install it (Debian/Ubuntu: sudo apt-get install graphviz; macOS: brew install graphviz)"; exit 1; \
	  fi; }

# The report test opens report.html in Chromium from the system's packages (never a
# browser download): installed like Graphviz.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "Chromium is missing (the report test opens report.html in it): install it (Debian/Ubuntu: sudo apt-get install chromium)"; exit 1; \
	  fi; }

demo: graphviz $(DEMO_STAMP)
	@for f in examples/*.kdl; do $(DEMO_BIN)/ktrans check $$f || exit 1; done
	$(DEMO_BIN)/ktrans summary examples/mnist_cnn.kdl
	mkdir -p build/demo
	$(DEMO_BIN)/ktrans build examples/mnist_cnn.kdl -o build/demo/mnist_cnn.onnx
	$(DEMO_BIN)/ktrans viz examples/toy_resnet.kdl -o build/demo/toy_resnet.svg --show-params
	$(DEMO_BIN)/ktrans train examples/mnist_mlp.kdl --data examples/data/mnist_5k.npz --epochs 3 \
	    --out build/demo/MnistMLP
	$(DEMO_BIN)/ktrans report build/demo/MnistMLP
	@echo "the run's report: build/demo/MnistMLP/report.html (open it in a browser)"

test: graphviz chromium $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) $(DEMO_VENV) build dist *.egg-info .pytest_cache .ruff_cache
