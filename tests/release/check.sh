#!/usr/bin/env bash
# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Release check: build the collection tarball and run galaxy-importer on it, as Galaxy and Automation Hub do on
# upload, offline. Fails on any warning or error the importer prints, on a version below 1.0.0 (Automation Hub's
# rule) and on Markdown that Galaxy renders wrongly (tests/release/findings.py says what counts).
#
#   tests/release/check.sh                   # what `make release-check` runs
#   tests/release/check.sh --allow-pre-1.0   # a 0.x version is reported as a note, not a failure
#   RELEASE_SOURCE=/path/to/export tests/release/check.sh   # check another source tree than the checkout
#
# galaxy-importer lives in its own virtual environment, .tmp/venvs/galaxy-importer (pins in
# tests/release/requirements-galaxy-importer.txt; rebuilt when they change); its settings are in
# tests/release/galaxy-importer.cfg. The tarball, the importer's log and importer_result.json are in .tmp/release.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/tests/release
PYTHON=${PYTHON:-python3}
VENV=$ROOT/.tmp/venvs/galaxy-importer
OUT=$ROOT/.tmp/release
REQUIREMENTS=$HERE/requirements-galaxy-importer.txt
SOURCE=$(cd "${RELEASE_SOURCE:-$ROOT}" && pwd)
FINDINGS_ARGS=()
for arg in "$@"; do
    case $arg in
    --allow-pre-1.0) FINDINGS_ARGS+=("$arg") ;;
    *)
        echo "usage: $0 [--allow-pre-1.0]" >&2
        exit 2
        ;;
    esac
done

# shellcheck source=tests/venv.sh
. "$ROOT/tests/venv.sh"
ensure_venv "$PYTHON" "$VENV" galaxy-importer "$REQUIREMENTS"

rm -rf "$OUT" && mkdir -p "$OUT/dist" "$OUT/import" "$OUT/ansible"
# Keep ansible-galaxy, ansible-doc and ansible-lint (XDG_CACHE_HOME) from writing under ~/.ansible.
export PATH=$VENV/bin:$PATH
export ANSIBLE_HOME=$OUT/ansible ANSIBLE_LOCAL_TEMP=$OUT/ansible/tmp
export GALAXY_IMPORTER_CONFIG=$HERE/galaxy-importer.cfg GALAXY_IMPORTER_ANSIBLE_LOCAL_TMP=$OUT/ansible/tmp

"$VENV/bin/ansible-galaxy" collection build --force --output-path "$OUT/dist" "$SOURCE"
TARBALL=$(ls "$OUT"/dist/*.tar.gz)

echo "galaxy-importer $("$VENV/bin/python" -c 'import galaxy_importer; print(galaxy_importer.__version__)') on" \
    "$(basename "$TARBALL")"
status=0
(cd "$OUT/import" && "$VENV/bin/python" -m galaxy_importer.main "$TARBALL") >"$OUT/import.log" 2>&1 || status=$?
# The importer's own progress, without the per-file "Loading ..."/"Linting ..." lines.
grep -v -E '^(Loading|Linting|\.\.\.)' "$OUT/import.log" || true
[ "$status" -eq 0 ] || echo "galaxy-importer exited with status $status"
"$VENV/bin/python" "$HERE/findings.py" --log "$OUT/import.log" --result "$OUT/import/importer_result.json" \
    --root "$SOURCE" "${FINDINGS_ARGS[@]}"
