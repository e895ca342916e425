"""Command-line entry point: ``magmap demo`` and ``magmap summarize``."""
from .main import main

__all__ = ["main"]
