"""`python -m numatui` and the `numatui` command.

The import of the CLI is inside the guard: Ctrl-C while Python is still loading
numatui exits 130 without a traceback, like Ctrl-C at any later moment.
"""

from __future__ import annotations

import sys


def run() -> int:
    try:
        from numatui.cli import main

        return main()
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(run())
