#!/usr/bin/env bash
# The project's one test command (README, CI): installs what the tests need,
# then runs every tier, the real-kernel guests included.
#   bash scripts/test.sh                 everything
#   bash scripts/test.sh tests/unit -q   any pytest arguments
# Needs root for the system packages (QEMU, a Debian kernel, numactl, tmux);
# on a machine that already has them it only checks. Prints timings at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1

started=$SECONDS
timings=()
step() { # name, then the command
    local name=$1 began=$SECONDS
    shift
    echo "::: $name: $*"
    "$@"
    timings+=("$(printf '%-10s %5d s' "$name" $((SECONDS - began)))")
}

if [ "$(id -u)" = 0 ]; then
    step provision bash scripts/provision-vm.sh
else
    echo "::: not root: system packages not checked (run scripts/provision-vm.sh as root once)" >&2
fi
step install python3 -m pip install -q -e '.[test]'
# pip may put new console scripts (vng) behind pyenv shims that need a rehash.
if command -v pyenv >/dev/null; then pyenv rehash; fi

began=$SECONDS
status=0
python3 -m pytest "$@" || status=$?
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
