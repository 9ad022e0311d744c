"""Test tooling the tests, benchmarks and scripts use; not part of the numatui package."""
