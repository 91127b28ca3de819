"""Customer lifetime value models and pipeline."""

__version__ = "0.1.0"
