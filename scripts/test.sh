#!/usr/bin/env bash
# The project's one test command (README, CI): installs what the tests need,
# then runs every tier, the real-kernel guests included.
#   bash scripts/test.sh                 everything
#   bash scripts/test.sh tests/unit -q   any pytest arguments
# Needs root for the system packages (QEMU, a Debian kernel, numactl, tmux,
# python3-venv); on a machine that already has them it only checks. Python
# packages go into a virtual environment in the repo (.venv, made with the
# python3 on PATH, e.g. Debian's /usr/bin/python3), never into a system Python
# (PEP 668 refuses that on Debian 12). The guests use the same interpreter:
# they see the host's files, .venv included. Prints timings at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1
PYTHON=${PYTHON:-python3}
VENV=$PWD/.venv

started=$SECONDS
timings=()
step() { # name, then the command
    local name=$1 began=$SECONDS
    shift
    echo "::: $name: $*"
    "$@"
    timings+=("$(printf '%-10s %5d s' "$name" $((SECONDS - began)))")
}

make_venv() {
    if "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        return 0 # there and working
    fi
    if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        echo "::: FAILED: $PYTHON is not Python >= 3.11 (set PYTHON=...)" >&2
        return 1
    fi
    if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            apt-get update -qq
            apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
        else
            echo "::: FAILED: $PYTHON has no venv/ensurepip: install python3-venv (as root)" >&2
            return 1
        fi
    fi
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
}

if [ "$(id -u)" = 0 ]; then
    step provision bash scripts/provision-vm.sh
else
    echo "::: not root: system packages not checked (run scripts/provision-vm.sh as root once)" >&2
fi
step venv make_venv
step install "$VENV/bin/python" -m pip install -q -e '.[test]'
# As `activate` would: the tests run the venv's tools (ruff, mypy, vng) by name.
export VIRTUAL_ENV=$VENV PATH=$VENV/bin:$PATH

began=$SECONDS
status=0
"$VENV/bin/python" -m pytest "$@" || status=$?
timings+=("$(printf '%-10s %5d s' pytest $((SECONDS - began)))")
echo "::: timings"
printf '    %s\n' "${timings[@]}"
printf '    %-10s %5d s\n' total $((SECONDS - started))
if [ "$status" -eq 5 ]; then
    echo "::: FAILED: pytest collected no tests (exit 5)" >&2
    exit 1
elif [ "$status" -ne 0 ]; then
    echo "::: FAILED: pytest exited with status $status" >&2
fi
exit "$status"
