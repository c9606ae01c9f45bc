#!/usr/bin/env bash
# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# The collection's documentation site, as docs.ansible.com builds it: antsibull-docs sphinx-init + Sphinx, with
# the plugin, module and role references and the guides of docs/ (listed in docs/docsite/extra-docs.yml).
# Offline (intersphinx reads a local inventory), and it fails on any warning.
#
#   tests/release/build-docs.sh        # what `make docs` runs; the site is .tmp/docs/html/index.html
#   tests/release/build-docs.sh --lint-only   # steps 1 to 3: what `make docs-lint` should run (see below)
#   DOCS_SOURCE=/path/to/export tests/release/build-docs.sh   # another source tree than the checkout
#
# antsibull-docs lint-collection-docs on the checkout itself fails once docs/docsite/extra-docs.yml lists guides
# ("ref ... does not reference an existing file"): the .rst files exist only in the copy. Lint the copy instead.
#
# 1. A copy of the collection (the files git knows) in .tmp/docs/collections/ansible_collections/lambdalabs/cloud.
# 2. Into that copy only, docs/docsite/rst/<guide>.rst from docs/<guide>.md (tests/release/docsite.py: pandoc
#    and md2rst.lua). The Markdown guides stay the only source; the checkout gets no .rst file.
# 3. antsibull-docs lint-collection-docs --plugin-docs on the copy: extra docs, links.yml, plugin docs.
# 4. antsibull-docs sphinx-init, then antsibull-docs collection, then sphinx-build -W (as the generated build.sh,
#    with intersphinx reading a local inventory of the few ansible-core pages it links to).
#
# Tools: .tmp/venvs/docs (pins in tests/release/requirements-docs.txt; rebuilt when they change).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/tests/release
PYTHON=${PYTHON:-python3}
VENV=$ROOT/.tmp/venvs/docs
REQUIREMENTS=$HERE/requirements-docs.txt
OUT=$ROOT/.tmp/docs
COLLECTIONS=$OUT/collections
COPY=$COLLECTIONS/ansible_collections/lambdalabs/cloud
SITE=$OUT/site
# DOCS_SOURCE: document this source tree instead of the checkout (a `git archive` export of a commit, say).
SOURCE=$(cd "${DOCS_SOURCE:-$ROOT}" && pwd)
start=$SECONDS
LINT_ONLY=false
case ${1:-} in
--lint-only) LINT_ONLY=true ;;
"") ;;
*)
    echo "usage: $0 [--lint-only]" >&2
    exit 2
    ;;
esac

# shellcheck source=tests/venv.sh
. "$ROOT/tests/venv.sh"
ensure_venv "$PYTHON" "$VENV" docs "$REQUIREMENTS"
export PATH=$VENV/bin:$PATH
export ANSIBLE_COLLECTIONS_PATH=$COLLECTIONS ANSIBLE_HOME=$OUT/ansible ANSIBLE_LOCAL_TEMP=$OUT/ansible/tmp

echo "== 1. copy of the collection: $COPY"
rm -rf "$OUT" && mkdir -p "$COPY"
if [ "$(git -C "$SOURCE" rev-parse --show-toplevel 2>/dev/null)" = "$SOURCE" ]; then
    (cd "$SOURCE" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$COPY")
else
    tar -C "$SOURCE" --exclude=./.tmp --exclude=./.venv --exclude=./.git --exclude=__pycache__ -cf - . |
        tar -C "$COPY" -xf -
fi

echo "== 2. guides: Markdown to reStructuredText"
rm -rf "$COPY/docs/docsite/rst"
"$VENV/bin/python" "$HERE/docsite.py" guides "$COPY"

echo "== 3. antsibull-docs lint-collection-docs"
(cd "$COPY" && antsibull-docs lint-collection-docs --plugin-docs --check-extra-docs-refs .)
if $LINT_ONLY; then
    echo "docs: lint passed in $((SECONDS - start)) s"
    exit 0
fi

echo "== 4. antsibull-docs sphinx-init, antsibull-docs collection, sphinx-build"
mkdir -m 700 "$SITE"
antsibull-docs sphinx-init --use-current --squash-hierarchy --dest-dir "$SITE" \
    --project lambdalabs.cloud --copyright "lambdalabs.cloud contributors" \
    --title "lambdalabs.cloud" --html-short-title "lambdalabs.cloud" lambdalabs.cloud >/dev/null
# Offline: intersphinx reads a local inventory of the ansible-core pages the plugin pages link to (docsite.py
# intersphinx), never the network; the links still point at docs.ansible.com.
"$VENV/bin/python" "$HERE/docsite.py" intersphinx "$SITE/ansible_devel.inv"
"$VENV/bin/python" - "$SITE/conf.py" "$SITE/ansible_devel.inv" <<'PY'
import re
import sys
from pathlib import Path

path = Path(sys.argv[1])
conf = path.read_text()
mapping = (
    "intersphinx_mapping = {\n"
    f"    'ansible_devel': ('https://docs.ansible.com/projects/ansible/devel/', {sys.argv[2]!r}),\n"
    "}\n"
)
conf, count = re.subn(r"^intersphinx_mapping = \{.*?^\}\n", lambda _: mapping, conf, flags=re.M | re.S)
if count != 1:
    raise SystemExit(f"no intersphinx_mapping in {path}")
path.write_text(conf)
PY
mkdir -p "$SITE/rst" && chmod og-w "$SITE/rst"
antsibull-docs --config-file "$SITE/antsibull-docs.cfg" collection --use-current --squash-hierarchy \
    --fail-on-error --cleanup everything --dest-dir "$SITE/rst" lambdalabs.cloud
status=0
sphinx-build -b html -c "$SITE" -W --keep-going -q "$SITE/rst" "$OUT/html" 2>&1 | tee "$OUT/sphinx.log" ||
    status=$?
warnings=$(grep -c -E "WARNING|ERROR" "$OUT/sphinx.log" || true)
if [ "$status" -ne 0 ] || [ "$warnings" -ne 0 ]; then
    echo "docs: FAILED, sphinx-build exited $status with $warnings warning(s) (log: $OUT/sphinx.log)"
    exit 1
fi
echo "docs: built in $((SECONDS - start)) s, 0 warnings: $OUT/html/index.html"
