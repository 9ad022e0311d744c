"""numatui: where every process's memory lives on a NUMA machine, and moving it."""

__version__ = "0.1.0"
