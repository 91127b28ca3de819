"""The stages of the chain: ``clv run`` and each stage on its own (build, features, train,
evaluate, score, publish), and ``clv env`` for running dbt and Feast by hand."""

from __future__ import annotations

import click

from clv_models.cli.common import config, console, pipeline


@click.command()
@click.option("--customers", type=int, help="Customers in the generated shop.")
@click.option("--seed", type=int, help="Seed of the generated shop.")
@click.option("--horizon-days", type=int, help="Prediction horizon in days.")
@click.option("--epochs", type=int, help="Maximum epochs of the deep model.")
@click.option("--skip-generate", is_flag=True,
              help="Use the raw data already in DATA_DIR/raw (e.g. from `clv import`).")
@click.pass_context
def run(ctx: click.Context, customers, seed, horizon_days, epochs, skip_generate) -> None:
    """Run the whole chain: generate -> build -> features -> train -> evaluate -> score."""
    cfg = config(ctx, **{"shop.customers": customers, "shop.seed": seed,
                          "horizon_days": horizon_days, "deep.epochs": epochs})
    pipeline(cfg).run(generate=not skip_generate)


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("dbt_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def build(ctx: click.Context, dbt_args: tuple[str, ...]) -> None:
    """`dbt build` of warehouse/ (extra arguments go to dbt, e.g. `clv build --select marts`),
    then publish the scores and BI models to DATA_DIR/bi for BI tools (see `clv publish`)."""
    from clv_models.warehouse import bi
    from clv_models.warehouse import dbt as warehouse

    cfg = config(ctx)
    if dbt_args:
        result = warehouse.run_dbt(cfg, ["build", *dbt_args], echo=click.echo)
        console.print(f"{result.passed}/{result.nodes_total} nodes ok")
        try:
            console.print(f"published for BI: {bi.publish(cfg).summary()}")
        except bi.PublishError as exc:  # a partial build may leave the BI models behind
            console.print(f"[yellow]not published for BI[/yellow]: {exc}")
    else:
        p = pipeline(cfg)
        p.build()
        p.publish(refresh=False)


@click.command()
@click.option("--full-refresh", is_flag=True,
              help="Empty the online store and materialize every feature row again.")
@click.pass_context
def features(ctx: click.Context, full_refresh: bool) -> None:
    """Feast apply, then materialize new feature rows into the online store (incremental)."""
    pipeline(config(ctx)).features(full_refresh=full_refresh)


@click.command()
@click.option("--epochs", type=int, help="Maximum epochs of the deep model.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]),
              help="Device of the deep model (auto: CUDA when available).")
@click.pass_context
def train(ctx: click.Context, epochs, device) -> None:
    """Train the reference models (naive, BG/NBD + Gamma-Gamma), XGBoost and the deep model."""
    p = pipeline(config(ctx, **{"deep.epochs": epochs, "deep.device": device}))
    p.train()


@click.command()
@click.pass_context
def evaluate(ctx: click.Context) -> None:
    """Evaluate the saved models on the held-out as-of date and write the report.

    The HTML report with its charts lands in DATA_DIR/reports/runs/<run>/index.html, copied to
    DATA_DIR/reports/latest/index.html; evaluation.json and deciles.csv stay in DATA_DIR/reports.
    """
    p = pipeline(config(ctx))
    p.evaluate()
    console.print(p.metrics_table())
    console.print(f"Report: [bold]{p.html.latest}[/bold] (this run: {p.html.index})")


@click.command()
@click.option("--cutoffs", type=click.IntRange(min=1), default=3, show_default=True,
              help="Successive cutoffs (the latest as-of dates with a feasible time split).")
@click.option("--bootstrap", type=click.IntRange(min=0), default=200, show_default=True,
              help="Bootstrap replicates of each model's difference to BG/NBD + Gamma-Gamma.")
@click.pass_context
def backtest(ctx: click.Context, cutoffs: int, bootstrap: int) -> None:
    """Refit and evaluate every model, the blend and the champion at successive cutoffs.

    Writes DATA_DIR/reports/backtest.json (per cutoff and summary) and prints each metric's
    mean and spread over the cutoffs with the difference to BG/NBD + Gamma-Gamma and its 95 %
    paired bootstrap interval (docs/evaluation.md).
    """
    pipeline(config(ctx)).backtest(cutoffs=cutoffs, bootstrap=bootstrap)


@click.command()
@click.option("--as-of", type=click.DateTime(["%Y-%m-%d"]),
              help="As-of date to score (default: the latest).")
@click.pass_context
def score(ctx: click.Context, as_of) -> None:
    """Score customers with every saved model and the blend, flag the champion, write
    clv_scores to the warehouse and publish the BI copy."""
    run = pipeline(config(ctx))
    run.score(as_of=as_of.date() if as_of else None)
    run.publish()


@click.command()
@click.option("--skip-dbt", is_flag=True,
              help="Copy the BI models as they are instead of rebuilding them on the scores.")
@click.pass_context
def publish(ctx: click.Context, skip_dbt: bool) -> None:
    """Publish clv_scores and the BI models to DATA_DIR/bi for BI tools, swapped in atomically.

    Rebuilds the dbt models on the scores (dbt build --select source:clv+, data tests
    included), checks that they add up to the scores, then writes DATA_DIR/bi/clv_bi.duckdb
    (under a temporary name, renamed over the published file) and a new folder
    DATA_DIR/bi/parquet/<publication_id>/ with one <table>.parquet per table, to which the link
    DATA_DIR/bi/parquet/current then points. A BI tool sees the previous or the new complete
    set, and never holds the warehouse's lock. `clv build` and `clv score` publish by
    themselves; docs/bi.md says how to connect.
    """
    pipeline(config(ctx)).publish(refresh=not skip_dbt)


@click.command()
@click.pass_context
def env(ctx: click.Context) -> None:
    """Print shell exports and the dbt command, to run `dbt` and `feast` by hand.

    `eval "$(clv env)"`, then `cd warehouse && dbt build --profiles-dir . --vars "$CLV_DBT_VARS"`,
    or `cd feature_repo && feast apply`. The vars carry the horizon, the as-of schedule (auto
    resolved from the data), the raw files' format and the optional tables they lack.
    """
    import json
    import shlex

    from clv_models.warehouse import dbt

    cfg = config(ctx)
    exports = {**cfg.env(), "CLV_DBT_VARS": json.dumps(dbt.project_vars(cfg), default=str)}
    for key, value in exports.items():
        click.echo(f"export {key}={shlex.quote(value)}")
    click.echo('# then: cd warehouse && dbt build --profiles-dir . --vars "$CLV_DBT_VARS"')
