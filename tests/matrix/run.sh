#!/usr/bin/env bash
# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# The support matrix: run the collection's checks under one ansible-core version.
#
#   tests/matrix/run.sh <core-version> [sanity|units|unit|integration|all] [pytest arguments...]
#   tests/matrix/run.sh 2.16 all
#   tests/matrix/run.sh 2.18 sanity,units,unit          # several steps: a comma-separated list
#   tests/matrix/run.sh 2.20 integration -x -k inventory
#
# <core-version> is a minor version with a tests/matrix/core-<version>.txt (2.16 ... 2.21); that file pins
# ansible-core and the test tools, and names the Python to use ("# python: 3.11"). The virtual environment is
# .tmp/venvs/core-<version> (rebuilt when the requirements change). Results (JUnit XML and logs) go to
# .tmp/matrix/core-<version>/.
#
# sanity, units: ansible-test sanity --requirements, ansible-test units --requirements, on a copy of the
#   collection at $TMPDIR/lambdalabs-cloud-matrix-<version>/collections/ansible_collections/lambdalabs/cloud
#   (ansible-test wants that path, outside this git checkout; as `make sanity` and `make units` do).
#   ansible-test's HOME is .tmp/matrix/core-<version>/home: its virtual environments and the offline pip bootstrap
#   that this version asks for (tests/sanity/seed_pip_bootstrap.py) stay there.
# unit, integration: this environment's pytest on tests/unit, tests/integration (-n MATRIX_WORKERS, default 6,
#   --dist loadscope, as `make integration`),
#   with ANSIBLE_COLLECTIONS_PATH at .tmp/matrix/core-<version>/collections (a link to the source tree); before
#   the integration tests, tests/install-system-deps.sh (as `make integration`).
# all: sanity, units, unit, integration.
#
# Environment: MATRIX_WORKERS (pytest-xdist workers for the integration tests, default 6); MATRIX_PYTHON (the
# interpreter to build the virtual environment with, instead of looking for python<X.Y> and pyenv's);
# MATRIX_SOURCE (test this source tree instead of the checkout, e.g. a `git archive` export of a commit).
# Exit status: 0 when every step passed, 1 when one failed (every asked-for step still runs), 2 on a usage error.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/matrix/versions.sh
. "$ROOT/tests/matrix/versions.sh"
usage() {
    echo "usage: $0 <core-version> [sanity|units|unit|integration|all][,...] [pytest arguments...]" >&2
    echo "versions: $(versions)" >&2
    exit 2
}
[ $# -ge 1 ] || usage
CORE=$1
STEP=${2:-all}
shift $(($# >= 2 ? 2 : 1))
REQUIREMENTS=$ROOT/tests/matrix/core-$CORE.txt
[ -f "$REQUIREMENTS" ] || usage
for step in ${STEP//,/ }; do
    case $step in sanity | units | unit | integration | all) ;; *) usage ;; esac
done
# Whether the step was asked for.
want() { [[ ",$STEP," == *",$1,"* || ",$STEP," == *",all,"* ]]; }

SOURCE=$(cd "${MATRIX_SOURCE:-$ROOT}" && pwd)
PY=$(sed -n 's/^# python: *//p' "$REQUIREMENTS")
VENV=$ROOT/.tmp/venvs/core-$CORE
OUT=$ROOT/.tmp/matrix/core-$CORE
COLLECTIONS=$OUT/collections
SANITY_TMP=${TMPDIR:-/tmp}/lambdalabs-cloud-matrix-$CORE
SANITY_ROOT=$SANITY_TMP/collections/ansible_collections/lambdalabs/cloud
mkdir -p "$OUT"

log() { printf '\n=== [core %s] %s\n' "$CORE" "$*"; }

find_python() {
    local candidate
    if [ -n "${MATRIX_PYTHON:-}" ]; then
        echo "$MATRIX_PYTHON"
        return
    fi
    for candidate in "python$PY" "$(command -v pyenv >/dev/null && pyenv root)"/versions/"$PY".*/bin/python"$PY"; do
        # pyenv's shims exist for every installed version but fail unless that version is selected.
        if "$candidate" -c 'import sys' >/dev/null 2>&1; then
            command -v "$candidate"
            return
        fi
    done
    echo "no working python$PY found (set MATRIX_PYTHON)" >&2
    exit 2
}

# ------------------------------------------------------------------ the virtual environment
# shellcheck source=tests/venv.sh
. "$ROOT/tests/venv.sh"
PYTHON=$(find_python) || exit 2
ensure_venv "$PYTHON" "$VENV" "[core $CORE] virtual environment" "$REQUIREMENTS" "$ROOT/requirements.txt" || exit 1
export PATH=$VENV/bin:$PATH
echo "[core $CORE] $("$VENV/bin/ansible" --version | sed -n 1p), $("$VENV/bin/python" -V), source $SOURCE"

# ------------------------------------------------------------------ the steps
FAILED=()

copy_collection() { # destination
    if [ "$(git -C "$SOURCE" rev-parse --show-toplevel 2>/dev/null)" = "$SOURCE" ]; then
        (cd "$SOURCE" && git ls-files -z --cached --others --exclude-standard |
            xargs -0 cp --parents -t "$1" 2>/dev/null) || true
    else
        tar -C "$SOURCE" --exclude=./.tmp --exclude=./.venv --exclude=./.git --exclude=__pycache__ \
            --exclude=.pytest_cache --exclude=.ruff_cache --exclude=./tests/output -cf - . | tar -C "$1" -xf -
    fi
}

run_ansible_test() { # sanity|units
    local command=$1 home=$OUT/home
    log "ansible-test $command --python $PY"
    mkdir -p "$home"
    # The pip version this ansible-test bootstraps into its environments, served offline.
    HOME=$home "$VENV/bin/python" "$ROOT/tests/sanity/seed_pip_bootstrap.py" --python "$PY" || return 1
    rm -rf "$SANITY_TMP" && mkdir -p "$SANITY_ROOT"
    copy_collection "$SANITY_ROOT"
    (cd "$SANITY_ROOT" && HOME=$home "$VENV/bin/ansible-test" "$command" --requirements --python "$PY" --color no) \
        2>&1 | grep --line-buffered -v "^WARNING: Location '" | tee "$OUT/$command.log"
    local rc=${PIPESTATUS[0]}
    rm -rf "$SANITY_TMP"
    return "$rc"
}

run_pytest() { # unit|integration [pytest arguments...]
    local kind=$1
    shift
    log "pytest tests/$kind $*"
    mkdir -p "$COLLECTIONS/ansible_collections/lambdalabs" "$OUT/ansible"
    ln -sfn "$SOURCE" "$COLLECTIONS/ansible_collections/lambdalabs/cloud"
    (cd "$SOURCE" && ANSIBLE_COLLECTIONS_PATH=$COLLECTIONS ANSIBLE_HOME=$OUT/ansible \
        ANSIBLE_LOCAL_TEMP=$OUT/ansible/tmp "$VENV/bin/pytest" -p no:cacheprovider --junitxml "$OUT/$kind.xml" \
        "tests/$kind" "$@") 2>&1 | tee "$OUT/$kind.log"
    return "${PIPESTATUS[0]}"
}

step() { # name command...
    local name=$1 start=$SECONDS
    shift
    if "$@"; then
        echo "[core $CORE] $name: passed in $((SECONDS - start)) s"
    else
        echo "[core $CORE] $name: FAILED in $((SECONDS - start)) s"
        FAILED+=("$name")
    fi
}

if want sanity; then
    step sanity run_ansible_test sanity
fi
if want units; then
    step units run_ansible_test units
fi
if want unit; then
    step unit run_pytest unit "$@"
fi
if want integration; then
    if [ -f "$SOURCE/tests/install-system-deps.sh" ]; then
        sh "$SOURCE/tests/install-system-deps.sh"
    fi
    step integration run_pytest integration -n "${MATRIX_WORKERS:-6}" --dist loadscope "$@"
fi

if [ ${#FAILED[@]} -gt 0 ]; then
    echo "[core $CORE] FAILED: ${FAILED[*]} (logs in $OUT)"
    exit 1
fi
echo "[core $CORE] all passed"
