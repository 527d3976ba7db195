# unlearnbench — `make install`, `make test` (or `make test-fast`), `make run`, `make bench DATASET=mnist`.
# Everything runs inside a virtualenv that `make install` creates (no manual step).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

# Data: the package's one rule (unlearnbench.runtime.default_data_root): $UNLEARNBENCH_DATA if set; else
# ../shared/data when it holds MNIST; else the per-user cache (~/.cache/unlearnbench/data).

# one cell (make run): override any of these on the command line
DATASET ?= mnist
MODEL   ?= resnet18
CLASS   ?= 2
SEED    ?= 0
METHOD  ?= finetune
ARGS    ?=
PYTEST_ARGS ?=

# a sweep (make bench): benchmarks/$(DATASET)_$(PROFILE).toml, results in results/<sweep name>
PROFILE ?= quick
JOBS    ?= 0
SET     ?=
BENCH_ARGS ?=
RESULTS ?=# empty: results/<sweep name>, where the repository's committed records are (the sweep resumes from them)
# a report's options: the results directory's own (report.args, its README's command), else --compare-paper
REPORT_ARGS ?= $(if $(wildcard $(RESULTS)/report.args),$(shell cat $(RESULTS)/report.args),--compare-paper)

.PHONY: install test test-fast run bench report perf clean

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

# the suite without the tests that train on real MNIST for more than a few seconds (marked `slow`)
test-fast: install
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

run: install
	$(PY) -m unlearnbench.run --dataset $(DATASET) --model $(MODEL) --forget-class $(CLASS) --seed $(SEED) \
		--method $(METHOD) $(ARGS)

bench: install
	@$(PY) -m unlearnbench.sweep --config benchmarks/$(DATASET)_$(PROFILE).toml --jobs $(JOBS) \
		$(if $(RESULTS),--results $(RESULTS)) $(foreach s,$(SET),--set $(s)) $(BENCH_ARGS); rc=$$?; \
	if [ $$rc -ne 2 ]; then $(MAKE) --no-print-directory report RESULTS=$(or $(RESULTS),$$($(PY) -c "import tomllib; \
		print('results/' + tomllib.load(open('benchmarks/$(DATASET)_$(PROFILE).toml', 'rb'))['name'])")); fi; \
	exit $$rc

report: install
	$(PY) -m unlearnbench.report $(RESULTS) $(REPORT_ARGS)

perf: install
	$(PY) -m unlearnbench.perf $(PERF_ARGS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
