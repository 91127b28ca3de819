"""The ``clv`` command line, one command group per area."""

from clv_models.cli.root import main

__all__ = ["main"]
