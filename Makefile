# One command each: `make demo` and `make test` (see README "Quick start").
# Installs are stamped: re-running is a no-op unless pyproject.toml or the constraints change.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
CONSTRAINTS := requirements/constraints.txt
PIPFLAGS := --disable-pip-version-check --no-input -c $(CONSTRAINTS)
export RAY_USAGE_STATS_ENABLED ?= 0
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export SAM2_BUILD_CUDA := 0

.PHONY: install install-dev demo test test-fast lint lock clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch first with plain pip (local wheels here, the registry elsewhere), then sam2 without build
# isolation (so pip does not build it against a second, downloaded torch), then the project.
$(VENV)/.stamp-base: $(PY) pyproject.toml $(CONSTRAINTS)
	$(PIP) install $(PIPFLAGS) torch torchvision setuptools
	$(PIP) install $(PIPFLAGS) --no-build-isolation sam2
	$(PIP) install $(PIPFLAGS) --no-build-isolation -e '.[all]'
	@touch $@

$(VENV)/.stamp-dev: $(VENV)/.stamp-base
	$(PIP) install $(PIPFLAGS) --no-build-isolation -e '.[all,dev]'
	@touch $@

install: $(VENV)/.stamp-base
install-dev: $(VENV)/.stamp-dev

demo: install
	$(PY) -m flows.demo

# Two tiers (tests/test_markers.py keeps the markers honest): `make test` runs everything (CI);
# `make test-fast` runs the unit tier, leaving out tests marked integration (Ray, Prefect, moto,
# subprocesses, sockets) or slow.
test: install-dev
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: install-dev
	$(PY) -m pytest -m "not integration and not slow" $(PYTEST_ARGS)

lint: install-dev
	$(VENV)/bin/ruff check .
	$(PY) -m mypy

lock: install-dev
	$(PIP) freeze --exclude-editable | grep -v '^unsamv2' > $(CONSTRAINTS).new
	@echo "wrote $(CONSTRAINTS).new; review and move over $(CONSTRAINTS)"

clean:
	rm -rf $(VENV) runs/demo .pytest_cache

# Local stack (docs/operations.md): Prefect server, process work pool + worker, Ray head, all on
# 127.0.0.1, state in .local/stack; `make stop` stops only what `make serve` started.
# Options: make serve STACK_ARGS="--prefect-port 0 --dashboard-port 0" (0 = any free port).
.PHONY: serve stop
serve: install
	$(PY) scripts/stack.py up $(STACK_ARGS)

stop:
	$(PY) scripts/stack.py down $(STACK_ARGS)
