#!/usr/bin/env bash
# The project's one test command (README, CI): installs what the tests need,
# then runs every tier, the real-kernel guests included.
#   scripts/test.sh                 everything
#   scripts/test.sh tests/unit -q   any pytest arguments
# Needs root for the system packages (QEMU, a Debian kernel, numactl); on a
# machine that already has them, it only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ]; then
    bash scripts/provision-vm.sh
else
    echo "not root: skipping system packages (run scripts/provision-vm.sh as root once)" >&2
fi
python3 -m pip install -q -e '.[test]'

set +e
python3 -m pytest "$@"
rc=$?
set -e
if [ "$rc" = 5 ]; then
    echo "pytest collected no tests: that is a failure here" >&2
    exit 1
fi
exit "$rc"
