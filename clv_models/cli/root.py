"""The ``clv`` group: global options, the expected-error handling, and the command groups."""

from __future__ import annotations

from pathlib import Path

import click

from clv_models import __version__
from clv_models.cli import bench, chain, data, serving
from clv_models.cli.common import parse_set
from clv_models.core.errors import CLVError, lock_error


class _Group(click.Group):
    """Prints the product's expected errors (:class:`~clv_models.core.errors.CLVError`, and
    DuckDB's lock conflict) as one line with a hint, without a traceback; ``--debug`` shows the
    traceback too. Anything else is a bug and keeps its traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:
            expected = exc if isinstance(exc, CLVError) else lock_error(exc)
            if expected is None or (ctx.obj or {}).get("debug"):
                raise
            raise click.ClickException(str(expected)) from exc


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="clv")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="YAML configuration file (default: ./clv.yaml when present).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where raw data, the warehouse, features, models and reports live "
                   "(default: ./data).")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="Override any setting, e.g. --set deep.epochs=10 --set horizon_days=90.")
@click.option("--debug", is_flag=True, help="Show the traceback of expected errors too.")
@click.pass_context
def main(ctx: click.Context, config_path: Path | None, data_dir: Path | None,
         settings: tuple[str, ...], debug: bool) -> None:
    """Customer lifetime value: dbt on DuckDB -> Feast -> XGBoost + PyTorch -> scores.

    Run `clv run` for the whole chain on a generated shop, or the stages one by one:
    generate, build, features, train, evaluate, score (publish: the copy BI tools read).
    """
    overrides = parse_set(settings)
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    ctx.obj = {"config_path": config_path, "overrides": overrides, "debug": debug}


for command in (chain.run, data.generate, data.import_, chain.build, chain.features, chain.train,
                chain.evaluate, chain.backtest, chain.score, chain.publish, serving.serve,
                serving.push_event, bench.bench, chain.env):
    main.add_command(command)
