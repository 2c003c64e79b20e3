# semrouter: two commands matter. `make run` starts the whole stack; `make test` runs the tests.
# Both build what they need first (venv, generated code, ONNX models) from the repo alone.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.stamp-install

.PHONY: venv models proto run test test-fast bench clean

venv: $(STAMP)

# Runtime + dev + build extras. torch==2.13.0 (CPU) comes from the machine's local wheel when present.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[dev,build]'
	touch $(STAMP)

proto: venv
	@if [ -f modelbuild/gen_proto.py ]; then $(PY) modelbuild/gen_proto.py; fi

# Exports MiniLM to ONNX (fp32 + int8, parity-checked) and installs the committed heads into models/.
# Fast and a no-op when models/manifest.json is up to date.
models: venv
	HF_HUB_OFFLINE=1 $(PY) -m modelbuild.build_all --out models

run: venv proto models
	$(PY) -m semrouter.devstack --config config/semrouter.yaml --envoy-config envoy/envoy.yaml $(if $(FAILURE_MODE),--failure-mode $(FAILURE_MODE))

test: venv proto models
	GRPC_VERBOSITY=NONE $(PY) -m pytest -q -p no:cacheprovider tests

bench: venv proto models
	@cat benchmarks/README.md

clean:
	rm -rf build models .pytest_cache
