# shellcheck shell=bash
# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Sourced by the test scripts that keep tools in a virtual environment of their own (tests/matrix, tests/release).
#
#   ensure_venv <python> <venv> <label> <requirements file>...
#
# Creates <venv> with <python> and installs the requirements files into it, unless it already holds exactly these
# requirements (a stamp file named after their hash); a change to any of them rebuilds it from scratch.

ensure_venv() {
    local python=$1 venv=$2 label=$3
    shift 3
    local stamp requirement args=()
    stamp=$venv/.installed-$(cat "$@" | sha256sum | cut -c1-16)
    [ -f "$stamp" ] && return 0
    echo "$label: installing into $venv"
    for requirement in "$@"; do
        args+=(-r "$requirement")
    done
    rm -rf "$venv"
    "$python" -m venv "$venv" || return 1
    # This machine's pip configuration may name index folders that do not exist: pip warns once per package.
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${args[@]}" \
        2> >(grep -v "^WARNING: Location '" >&2) || return 1
    touch "$stamp"
}
