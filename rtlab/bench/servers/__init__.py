"""The servers under test, each run as its own process; each prints ``listening PORT``."""
