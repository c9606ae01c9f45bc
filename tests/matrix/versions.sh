# shellcheck shell=bash
# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Sourced by tests/matrix/run.sh and run-all.sh, after they set ROOT.
# The versions with a requirements file: tests/matrix/core-<version>.txt.
versions() {
    local file
    for file in "$ROOT"/tests/matrix/core-*.txt; do
        file=${file##*/core-}
        echo "${file%.txt}"
    done | sort -V | xargs
}
