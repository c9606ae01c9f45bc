#!/usr/bin/env bash
# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# The whole support matrix, one ansible-core version after the other (tests/matrix/run.sh for each), then a
# summary: each version's steps, and the tests that failed.
#
#   tests/matrix/run-all.sh [sanity|units|unit|integration|all][,...] [pytest arguments...]   # `make test-matrix`
#   MATRIX_VERSIONS="2.16 2.21" tests/matrix/run-all.sh integration
#   tests/matrix/run-all.sh sanity,units,unit
#
# Logs: .tmp/matrix/run-all.log and .tmp/matrix/core-<version>/. Exit status 1 when any version failed.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/matrix/versions.sh
. "$ROOT/tests/matrix/versions.sh"
VERSIONS=${MATRIX_VERSIONS:-$(versions)}
mkdir -p "$ROOT/.tmp/matrix"
LOG=$ROOT/.tmp/matrix/run-all.log
: >"$LOG"
STARTED=$ROOT/.tmp/matrix/run-all.started # results newer than this come from this run
touch "$STARTED"

status=0
for version in $VERSIONS; do
    start=$SECONDS
    "$ROOT/tests/matrix/run.sh" "$version" "$@" 2>&1 | tee -a "$LOG" || status=1
    echo "[core $version] took $((SECONDS - start)) s" | tee -a "$LOG"
done

echo
echo "=== support matrix"
grep -E '^\[core [0-9.]+\] ([a-z]+: (passed|FAILED)|took)' "$LOG"
# Failed tests, from the JUnit files of this run's pytest steps.
for version in $VERSIONS; do
    for xml in "$ROOT/.tmp/matrix/core-$version"/{unit,integration}.xml; do
        if [ ! -f "$xml" ] || [ ! "$xml" -nt "$STARTED" ]; then
            continue
        fi
        python3 - "$version" "$xml" <<'PY'
import sys
import xml.etree.ElementTree as ET

version, path = sys.argv[1:]
for case in ET.parse(path).iter("testcase"):
    for outcome in ("failure", "error"):
        node = case.find(outcome)
        if node is not None:
            message = (node.get("message") or "").splitlines()[0][:160] if node.get("message") else ""
            print(f"[core {version}] {outcome}: {case.get('classname')}::{case.get('name')}: {message}")
PY
    done
    for kind in sanity units; do
        log=$ROOT/.tmp/matrix/core-$version/$kind.log
        if [ -f "$log" ] && [ "$log" -nt "$STARTED" ]; then
            grep -E '^(ERROR: [^ ]+:[0-9]+:[0-9]+:|FAILED )' "$log" | sed "s/^/[core $version] $kind: /"
        fi
    done
done
exit $status
