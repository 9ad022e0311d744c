"""The `export` subcommand's arguments (argparse only: the CLI imports this at start)."""

from __future__ import annotations

import argparse
import ipaddress
from pathlib import Path
from typing import NamedTuple

DEFAULT_LISTEN = "127.0.0.1:9787"


class ListenAddress(NamedTuple):  # not a dataclass: `dataclasses` costs the CLI's start 5 ms
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_listen(text: str) -> ListenAddress:
    """`HOST:PORT` or `[IPV6]:PORT`; HOST is an IP address (no name lookup, no wildcard default)."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise argparse.ArgumentTypeError(f"--listen wants HOST:PORT, not {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--listen wants an IP address such as 127.0.0.1 or [::1], not {host!r}"
        ) from None
    if not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) < 65536:
        raise argparse.ArgumentTypeError(f"--listen port must be 1-65535, not {port_text!r}")
    return ListenAddress(host, int(port_text))


def _non_negative_int(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, not {text!r}")
    return int(text)


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--interval wants seconds, not {text!r}") from None
    if not 0.1 <= value <= 86400:
        raise argparse.ArgumentTypeError("--interval must be between 0.1 and 86400 seconds")
    return value


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--listen",
        type=parse_listen,
        metavar="HOST:PORT",
        help=f"serve /metrics on this address (default {DEFAULT_LISTEN}: this machine only)",
    )
    where.add_argument(
        "--textfile",
        type=Path,
        metavar="DIR",
        help="write DIR/numatui.prom (atomically) for node_exporter's textfile collector",
    )
    where.add_argument("--once", action="store_true", help="print one exposition and exit")
    parser.add_argument(
        "--interval",
        type=_interval,
        default=15.0,
        metavar="SECONDS",
        help="with --textfile: rewrite the file this often (15)",
    )
    parser.add_argument(
        "--min-bytes",
        type=_non_negative_int,
        default=8 * 1024 * 1024,
        metavar="BYTES",
        help="per-process series only for processes with this much on NUMA nodes (8 MiB)",
    )
    parser.add_argument(
        "--top",
        type=_positive_int,
        default=50,
        metavar="N",
        help="per-process series for at most the N largest processes (50)",
    )
    parser.add_argument(
        "--audit-log",
        type=Path,
        default=None,
        metavar="FILE",
        help="audit log to count migrations from (default: this user's)",
    )
