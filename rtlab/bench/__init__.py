"""``rtlab bench``: rtlab's server measured side by side with peer servers (docs/benchmarks.md)."""
