"""lhe-tui: watch, steer and replay long-horizon execution runs of LLMs."""

__version__ = "0.1.0"
