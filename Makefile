# gns-env: `make demo` trains and compares on real Fashion-MNIST, `make test` runs the tests.
# Both set everything up first (virtual environment in .venv, the Fashion-MNIST files).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT ?= runs/demo
EPISODES ?= 5
SEEDS ?= 3
FMNIST_DEBIAN := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
# The GLUE files in the official layout: $$GNS_GLUE_DIR, else the team's offline copy next to the repository.
GLUE_SHARED := $(abspath ../shared/data/glue)
ifneq ($(wildcard $(GLUE_SHARED)/RTE/train.tsv),)
export GNS_GLUE_DIR ?= $(GLUE_SHARED)
endif
# The real CIFAR-10 JPEGs (ImageFolder layout) of the lite CIFAR envs, likewise.
CIFAR10_SHARED := $(abspath ../shared/data/cifar10)
ifneq ($(wildcard $(CIFAR10_SHARED)/train),)
export GNS_CIFAR10_DIR ?= $(CIFAR10_SHARED)
endif

.PHONY: install data demo test test-slow test-all clean

install: $(STAMP)

# torch/torchvision are pinned here (the wheels this project is tested with); setup.cfg keeps open ranges.
$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e ".[text,test,ray]"
	touch $(STAMP)

# Fashion-MNIST: $$GNS_DATA_DIR if set, else Debian's dataset-fashion-mnist (installed here when
# apt-get is usable), else torchvision downloads it on first use.
data:
	@if [ -n "$$GNS_DATA_DIR" ] || [ -f $(FMNIST_DEBIAN) ]; then exit 0; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		(apt-get install -y -qq dataset-fashion-mnist || (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist)) >/dev/null; \
	else echo "note: Fashion-MNIST not found; torchvision will try to download it (set GNS_DATA_DIR to use local files)"; fi

demo: install data
	$(BIN)/python scripts/train_gns.py --env GNS/FashionMNIST-Lite-v0 --episodes $(EPISODES) --seed 0 --out $(OUT)
	$(BIN)/python scripts/compare.py --agent $(OUT)/agent.zip --methods constant cosine gns --env GNS/FashionMNIST-Lite-v0 --seeds $(SEEDS) --out $(OUT)/compare

test: install data
	$(BIN)/python -m pytest -m "not slow"

test-slow: install data
	$(BIN)/python -m pytest -m slow

test-all: install data
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) runs .pytest_cache
