"""The notebook layer: background servers, explicit waits, exercise checks."""
