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
PYTEST_WORKERS ?= auto
PIP_BOOTSTRAP_VERSION := 24_2
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export PATH := $(BIN):$(PATH)

.PHONY: test lint lint-ansible docs-lint sanity-copy sanity units unit integration node-deps demo venv collection-link build clean

test: lint lint-ansible docs-lint sanity units unit integration

venv: $(VENV)/.installed

$(VENV)/.installed: requirements-test.txt requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-test.txt -r requirements.txt
	touch $@

collection-link:
	@mkdir -p $(dir $(COLLECTION_LINK))
	@ln -sfn $(CURDIR) $(COLLECTION_LINK)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# ansible-lint, production profile, over the roles, the playbooks and the demo (settings in .ansible-lint).
lint-ansible: venv collection-link
	$(BIN)/ansible-lint roles playbooks tests/demo

# The collection's documentation, as docs.ansible.com would render it: references, markup, semantic links.
docs-lint: venv collection-link
	cd $(COLLECTION_LINK) && $(BIN)/antsibull-docs lint-collection-docs --plugin-docs .

sanity-copy: venv
	rm -rf $(SANITY_TMP) && mkdir -p $(SANITY_ROOT)
	git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t $(SANITY_ROOT)
	mkdir -p $(HOME)/.ansible/test/cache
	cp tests/sanity/get_pip_offline.py $(HOME)/.ansible/test/cache/get_pip_$(PIP_BOOTSTRAP_VERSION).py

sanity: sanity-copy
	cd $(SANITY_ROOT) && $(BIN)/ansible-test sanity --requirements --python 3.11 --color no

# The unit tests as ansible-test runs them (tests/unit/requirements.txt), besides the plain pytest run below.
units: sanity-copy
	cd $(SANITY_ROOT) && $(BIN)/ansible-test units --requirements --python 3.11 --color no

unit: venv collection-link
	$(BIN)/pytest -p no:cacheprovider tests/unit

# openssh-server and sudo, for the simulator's real SSH nodes (--nodes): installed with apt-get when running as root
# and missing; otherwise the script says why in one line, and the node tests skip (or fail, with CI=true).
node-deps:
	sh tests/simulator/install-node-deps.sh

# Each pytest worker starts its own simulator.
integration: venv collection-link node-deps
	$(BIN)/pytest -p no:cacheprovider -n $(PYTEST_WORKERS) tests/integration

# The whole flow against the simulator, with no account: provision, inventory, configure, reap, teardown.
demo:
	@export DEMO_STARTED=$$(date +%s) && $(MAKE) --no-print-directory venv && tests/demo/run.sh

build: venv
	mkdir -p $(TMP)/dist
	$(BIN)/ansible-galaxy collection build --force --output-path $(TMP)/dist .

clean:
	rm -rf $(TMP) $(VENV)
