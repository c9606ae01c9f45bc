# One command for every check: `make test`. One for the demo: `make demo`.
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
TMP := $(CURDIR)/.tmp
# ansible-playbook and pytest find the collection here (a link to this checkout).
COLLECTIONS := $(TMP)/collections
COLLECTION_LINK := $(COLLECTIONS)/ansible_collections/lambdalabs/cloud
# ansible-test needs a real copy at .../ansible_collections/lambdalabs/cloud, outside this git checkout; under a
# directory named collections, so that pytest-ansible recognises the tree too.
SANITY_TMP := $(or $(TMPDIR),/tmp)/lambdalabs-cloud-sanity
SANITY_ROOT := $(SANITY_TMP)/collections/ansible_collections/lambdalabs/cloud
# Lambda Stack's stand-in for the simulator's nodes: PyTorch (the CPU build) and numpy, which every node's python3
# imports, read-only, as on Lambda's images (tests/simulator --lambda-stack). Compiled once here: a node cannot write
# Python's cache into it, and would otherwise compile PyTorch again for each process that imports it.
LAMBDA_STACK := $(TMP)/lambda-stack
# pytest-xdist workers for the integration tests: more than the cores, as most tests wait on the simulator.
PYTEST_WORKERS ?= 6
# The support matrix: which steps (sanity, units, unit, integration, all), and which ansible-core versions.
MATRIX_STEP ?= all
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export PATH := $(BIN):$(PATH)

.PHONY: test checks lint lint-ansible docs-lint sanity-copy sanity units unit integration system-deps lambda-stack \
	release-check docs \
	test-matrix demo venv collection-link build clean ee ee-test

# The integration tests take the longest, and often wait on the simulator: the other checks run beside them, one
# after the other. Each target's output is shown in one piece, when it ends.
test:
	@$(MAKE) --no-print-directory -j2 --output-sync=target integration checks

checks: lint lint-ansible docs-lint sanity units unit release-check

venv: $(VENV)/.installed

$(VENV)/.installed: requirements-test.txt requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-test.txt -r requirements.txt
	touch $@

collection-link:
	@mkdir -p $(dir $(COLLECTION_LINK))
	@ln -sfn $(CURDIR) $(COLLECTION_LINK)

# Debian packages the checks need: openssh-server and sudo for the simulator's real SSH nodes (--nodes), and
# shellcheck for ansible-test's shell checks. Installed with apt-get when running as root and missing; otherwise the
# script says why in one line (and the node tests skip, or fail with CI=true).
system-deps:
	sh tests/install-system-deps.sh

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# ansible-lint, production profile, over the roles, the playbooks, the demo and the rulebooks (settings in .ansible-lint).
lint-ansible: venv collection-link
	$(BIN)/ansible-lint roles playbooks tests/demo extensions/eda/rulebooks

# The collection's documentation, as docs.ansible.com would render it, with the guides converted as `make docs`
# converts them: references, markup, semantic links.
docs-lint: venv
	tests/release/build-docs.sh --lint-only

# ansible-test's pip bootstrap cannot be downloaded here: tests/sanity/seed_pip_bootstrap.py puts the one this
# ansible-test asks for in its cache (~/.ansible/test/cache), from tests/sanity/get_pip_offline.py.
sanity-copy: venv
	rm -rf $(SANITY_TMP) && mkdir -p $(SANITY_ROOT)
	git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t $(SANITY_ROOT)
	$(BIN)/python tests/sanity/seed_pip_bootstrap.py --python 3.11

sanity: sanity-copy system-deps
	cd $(SANITY_ROOT) && $(BIN)/ansible-test sanity --requirements --python 3.11 --color no

# The unit tests as ansible-test runs them (tests/unit/requirements.txt), besides the plain pytest run below.
units: sanity-copy
	cd $(SANITY_ROOT) && $(BIN)/ansible-test units --requirements --python 3.11 --color no

unit: venv collection-link
	$(BIN)/pytest -p no:cacheprovider tests/unit

# Each pytest worker starts its own simulator. The tests are handed out one by one, except the files whose tests
# share a cluster of nodes and run in order: each goes to one worker (tests/integration/conftest.py). Python may
# cache the compiled tests, simulator and module_utils (in __pycache__ folders of this checkout), which the hundreds
# of simulators and module runs would otherwise compile again each time.
integration: venv collection-link system-deps lambda-stack
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/pytest -p no:cacheprovider -n $(PYTEST_WORKERS) --dist loadscope tests/integration

lambda-stack: $(LAMBDA_STACK)/.installed

$(LAMBDA_STACK)/.installed: | venv
	rm -rf $(LAMBDA_STACK)
	$(BIN)/pip install --quiet --disable-pip-version-check --no-compile --target $(LAMBDA_STACK) torch==2.13.0 numpy
	$(BIN)/python -m compileall -q -j 0 -x /py312_ $(LAMBDA_STACK)
	touch $@

# The tarball as Galaxy and Automation Hub import it: galaxy-importer with flake8 and the required tags, offline.
release-check: venv
	tests/release/check.sh $(RELEASE_CHECK_ARGS)

# The documentation site, plugins and guides, with antsibull-docs and Sphinx into .tmp/docs (0 warnings).
docs: venv
	tests/release/build-docs.sh

# Sanity, unit and integration tests under every supported ansible-core (tests/matrix/core-*.txt), or the ones in
# MATRIX_VERSIONS, for example: make test-matrix MATRIX_VERSIONS="2.16 2.21" MATRIX_STEP=sanity,units,unit
test-matrix: collection-link system-deps
	tests/matrix/run-all.sh $(MATRIX_STEP)

# The whole flow against the simulator, with no account: provision, inventory, configure over SSH, train, reap,
# teardown.
demo: system-deps
	@export DEMO_STARTED=$$(date +%s) && $(MAKE) --no-print-directory venv && tests/demo/run.sh

# The collection's execution environment image, localhost/lambdalabs-cloud-ee:latest, with ansible-builder and podman
# on a Debian base image made offline (tests/ee/build.sh); it prints the image's size. `make ee-test` runs a job in
# it as AWX does: provision, inventory, configure over SSH, teardown, on the simulator.
ee: venv collection-link
	tests/ee/build.sh

ee-test: venv collection-link system-deps
	$(BIN)/pytest -p no:cacheprovider tests/ee

build: venv
	mkdir -p $(TMP)/dist
	$(BIN)/ansible-galaxy collection build --force --output-path $(TMP)/dist .

clean:
	rm -rf $(TMP) $(VENV)
