"""The typed snapshots every face of numatui sees.

Plain, immutable dataclasses: no I/O here and no Textual. The kernel layer
(`numatui.kernel`) builds them from /sys, /proc and syscalls; the CLI and the
screens only read them. Byte counts are always bytes (never pages or kB) so
no face has to know a page size.

One module per subject, and this package imports none of them: `dataclasses`
builds each class's methods at import (about 1 ms a class), so a command, or a
scan's helper process, loads only the subjects it uses.
"""
