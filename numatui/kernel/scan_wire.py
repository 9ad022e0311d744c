"""The wire between a scan and its helper processes, and a helper's main loop.

Marshal of plain values, framed by a length. It only ever passes between numatui
and its own children (`scan_pool` starts them). A helper imports this module and
`pid_reader`, nothing more of numatui: what it loads is what its start costs.
"""

from __future__ import annotations

import marshal
import struct
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3 ms)
if TYPE_CHECKING:
    from typing import IO, Any

_LENGTH = struct.Struct("<I")


def send(stream: IO[bytes], value: Any) -> None:
    data = marshal.dumps(value)
    stream.write(_LENGTH.pack(len(data)) + data)
    stream.flush()


def receive(stream: IO[bytes]) -> Any:
    """The next value; EOFError when the other end closed."""
    head = _read_exactly(stream, _LENGTH.size)
    return marshal.loads(_read_exactly(stream, _LENGTH.unpack(head)[0]))


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size)
    if data is None or len(data) != size:
        raise EOFError("the other end closed")
    return bytes(data)


def child_main() -> None:
    """A helper: the setup, then chunks of pids until stdin closes (or the parent kills it)."""
    from numatui.kernel.pid_reader import helper_reader  # the helper's only import of weight

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    try:
        read = helper_reader(receive(stdin))
        while True:
            chunk = receive(stdin)
            send(stdout, [(key, read(key)) for key in chunk])
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        return
