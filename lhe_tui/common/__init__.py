"""Errors and bounded file reading that every layer uses."""
