"""What every command group shares: the console, the configuration of a command and the
pipeline object."""

from __future__ import annotations

import click
from rich.console import Console

from clv_models.core.config import Config, ConfigError, load_config

console = Console(width=max(Console().width, 120))


def parse_set(values: tuple[str, ...]) -> dict[str, str]:
    """``KEY=VALUE`` pairs as a mapping (``--set``, ``--map``)."""
    out = {}
    for item in values:
        if "=" not in item:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--set")
        key, value = item.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def config(ctx: click.Context, **overrides) -> Config:
    """The configuration with the group's options and the command's own flags applied."""
    obj = ctx.obj
    merged = {**obj["overrides"], **{k: v for k, v in overrides.items() if v is not None}}
    try:
        return load_config(obj["config_path"], merged)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc


def pipeline(cfg: Config):
    """The :class:`~clv_models.pipeline.Pipeline` of ``cfg``, printing to the console."""
    from clv_models.pipeline import Pipeline

    return Pipeline(cfg, console=console)


def bench_config(ctx: click.Context, name: str, customers: int) -> Config:
    """The configuration of a benchmark's own shop: DATA_DIR/bench-<name>-<customers> unless
    --data-dir is given."""
    from clv_models.bench.models import default_data_dir

    overrides: dict = {"shop.customers": customers}
    if "data_dir" not in ctx.obj["overrides"]:
        overrides["data_dir"] = default_data_dir(config(ctx), name, customers)
    return config(ctx, **overrides)
