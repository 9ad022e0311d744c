"""`numatui export`: per-node, per-process and per-cgroup NUMA memory for Prometheus.

`options` (argparse only) is imported by the CLI at start; `collector` and
`serve` import prometheus_client, and load only when `export` runs.
"""
