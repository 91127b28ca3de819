"""``clv bench ...``: the benchmarks, each printing its table and writing its JSON document."""

from __future__ import annotations

from pathlib import Path

import click

from clv_models.cli.common import bench_config, config, console


@click.group()
def bench() -> None:
    """Benchmarks (not tests): each prints its table; --json PATH writes the same figures."""
    from clv_models.bench.common import mark_start

    mark_start()  # the load average at the start, whenever the benchmark makes its result


json_option = click.option(
    "--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the figures as a JSON document (with date, commit, machine and load "
         "average; scripts/bench_tables.py renders it into docs/benchmarks.md).")


def emit(result, json_path: Path | None, tables=()) -> None:
    """Print the benchmark's own tables (or the generic one), the device, and write the JSON."""
    import json

    if tables:
        for table in tables:
            console.print(table)
    else:
        _print_rows(result)
    doc = result.as_json()
    console.print(f"device: {doc['device']}; load average at start {doc['load_average']}")
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(doc, indent=2, default=str))
        console.print(f"wrote {json_path}")


def _print_rows(result) -> None:

    from rich.table import Table

    table = Table(title=f"clv bench {result.benchmark}")
    for col in ("measure / ratio", "value", "details"):
        table.add_column(col)
    for row in result.rows:
        name = row.get("measure") or row.get("ratio")
        value = row.get("value")
        details = ", ".join(f"{k}={v}" for k, v in row.items()
                            if k not in {"measure", "ratio", "value"})
        table.add_row(name, "" if value is None and "value" not in row else str(value), details)
    console.print(table)


@bench.command("warehouse")
@click.option("--customers", type=int, default=1_000_000, show_default=True,
              help="Customers of the generated shop (generated once, then reused).")
@click.option("--as-of", type=click.DateTime(["%Y-%m-%d"]),
              help="As-of date of the RFM comparison (default: the evaluation date).")
@json_option
@click.pass_context
def bench_warehouse(ctx: click.Context, customers: int, as_of, json_path: Path | None) -> None:
    """dbt build vs a raw scan, RFM mart vs a hand-written query and vs lifetimes.

    The shop lives in DATA_DIR/bench-warehouse-<customers> unless --data-dir is given.
    """
    from clv_models.bench.warehouse import bench_warehouse as run_bench

    overrides = {"shop.customers": customers}
    if "data_dir" not in ctx.obj["overrides"]:
        base = config(ctx).data_dir
        overrides["data_dir"] = base / f"bench-warehouse-{customers}"
    cfg = config(ctx, **overrides)
    result = run_bench(cfg, as_of.date() if as_of else None, echo=console.print)
    emit(result, json_path)


@bench.command("serving")
@click.option("--customers", type=int, default=20_000, show_default=True,
              help="Customers of the shop generated when DATA_DIR holds none.")
@click.option("--store", "stores", type=click.Choice(["sqlite", "redis"]), multiple=True,
              help="Online stores to measure (repeatable; default: sqlite and redis).")
@click.option("--redis-url", help="An existing Redis database to use (the benchmark empties "
                                  "the project's keys there); default: a throw-away "
                                  "redis-server on a free loopback port.")
@click.option("--model", default="deep_ziln", show_default=True,
              type=click.Choice(["deep_ziln", "xgboost", "bgnbd_gg", "naive"]),
              help="The model the CLV endpoint serves.")
@click.option("--requests", type=click.IntRange(min=100), default=2000, show_default=True,
              help="Timed requests per measurement at batch 1.")
@click.option("--batch-requests", type=click.IntRange(min=20), default=300, show_default=True,
              help="Timed requests per measurement at batch 100.")
@click.option("--materialize-dir", type=click.Path(exists=True, file_okay=False,
                                                   path_type=Path),
              help="Feature Parquet exports of a 1M-customer shop (e.g. /tmp/gen1m/features): "
                   "measure their materialization for real instead of extrapolating.")
@json_option
@click.pass_context
def bench_serving(ctx: click.Context, customers: int, stores: tuple[str, ...],
                  redis_url: str | None, model: str, requests: int, batch_requests: int,
                  materialize_dir: Path | None, json_path: Path | None) -> None:
    """Online latency (Feast SDK, feast serve, clv serve) and materialization per store.

    For SQLite and Redis: materializes the shop's features into a store of its own, then
    measures p50/p99 with load from a second process on loopback: Feast SDK reads of clv_v1
    (56 features) at batch 1 and 100, `feast serve` at batch 1 and 100, the CLV endpoint at
    batch 1 paced at 100 requests/s and at batch 100; and materialization throughput with its
    1M-customer extrapolation. Targets and Feast's published figures are in the table. The shop
    lives in DATA_DIR/bench-serving-<customers> unless --data-dir is given; its chain runs first
    when it has no trained model. Needs redis-server on the PATH unless --redis-url is given.
    """

    from clv_models.bench.serving import STORES, serving_table
    from clv_models.bench.serving import bench_serving as run_bench

    result = run_bench(bench_config(ctx, "serving", customers), stores=stores or STORES,
                       redis_url=redis_url, model=model, requests=requests,
                       batch_requests=batch_requests, materialize_dir=materialize_dir,
                       console=console, echo=console.print)
    emit(result, json_path, [serving_table(result)])


@bench.command("oracle")
@click.option("--customers", type=int, default=100_000, show_default=True,
              help="Customers of the generated shop (generated once, then reused).")
@json_option
@click.pass_context
def bench_oracle(ctx: click.Context, customers: int, json_path: Path | None) -> None:
    """Each model's accuracy as a share of the oracle's on a generated shop.

    Runs the whole chain (generate when absent, build, features, train, evaluate) and reports
    every metric per model with its normalized Gini and MAE over the oracle's, and whether
    deep_ziln reaches 0.97 of the oracle's normalized Gini and beats XGBoost. Two more
    references say what is reachable: feature_ceiling (XGBoost fitted to the oracle's values,
    an estimate of the best these features allow) and the Gini of every model within customers
    grouped by their order history. The shop lives in DATA_DIR/bench-oracle-<customers> unless
    --data-dir is given.
    """

    from clv_models.bench.models import bench_oracle as run_bench
    from clv_models.bench.models import gap_table, oracle_table

    result = run_bench(bench_config(ctx, "oracle", customers), console=console)
    console.print(oracle_table(result))
    emit(result, json_path, [gap_table(result)])


@bench.command("training")
@click.option("--customers", type=int, default=1_000_000, show_default=True,
              help="Customers of the shop generated when DATA_DIR holds none.")
@click.option("--entity-rows", type=int, default=1_000_000, show_default=True,
              help="About this many label rows (whole customers) for the retrieval.")
@click.option("--rows", type=int, default=1_000_000, show_default=True,
              help="Synthetic training rows of the deep-model throughput.")
@click.option("--epochs", type=int, default=2, show_default=True,
              help="Epochs of the deep-model throughput.")
@click.option("--batch-sizes", default="16384", show_default=True,
              help="Comma-separated batch sizes of the deep-model throughput.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True, help="auto: the CPU, and CUDA when present.")
@click.option("--score-customers", type=int, default=1_000_000, show_default=True,
              help="Customers scored end to end (at most the shop's).")
@click.option("--only", type=click.Choice(["retrieval", "deep", "scoring"]), multiple=True,
              help="Run only these measurements (repeatable; default: all three).")
@json_option
@click.pass_context
def bench_training(ctx: click.Context, customers: int, entity_rows: int, rows: int, epochs: int,
                   batch_sizes: str, device: str, score_customers: int, only: tuple[str, ...],
                   json_path: Path | None) -> None:
    """Training-set retrieval vs an as-of join, deep-model samples/s, batch scoring.

    Feast get_historical_features of the labels' entity rows ÷ one DuckDB ASOF JOIN over the
    same Parquet files (values checked equal); the deep model's training throughput on
    synthetic rows with the 52-week sequences (CPU, and CUDA when present); scoring customers
    end to end into clv_scores, with the stage split. Scoring uses the saved models, or trains
    them on the retrieved rows when there are none (reduce with --set deep.epochs=...). The shop
    lives in DATA_DIR/bench-training-<customers> unless --data-dir is given; it is generated
    and built when absent.
    """
    from clv_models.bench.models import PARTS
    from clv_models.bench.models import bench_training as run_bench

    try:
        sizes = [int(b) for b in batch_sizes.split(",") if b.strip()]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--batch-sizes") from exc
    cfg = (config(ctx) if only == ("deep",)
           else bench_config(ctx, "training", customers))
    result = run_bench(cfg, entity_cap=entity_rows, deep_rows=rows, deep_epochs=epochs,
                       batch_sizes=sizes, device=device, score_customers=score_customers,
                       parts=only or PARTS, echo=console.print)
    emit(result, json_path)


@bench.command("cdnow")
@click.option("--cdnow", "cdnow_path", type=click.Path(exists=True, dir_okay=False,
                                                       path_type=Path),
              help="A local CDNOW_master.txt (default: the copy in the installed lifetimes "
                   "package, pip install 'clv-models[bench]').")
@click.option("--sample", is_flag=True,
              help="The 1/10 sample (CDNOW_sample.txt, 2,357 customers, from the same package) "
                   "instead of the whole file: a small shop.")
@click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True,
              help="Folds of the cross-fitting by customer (xgboost, deep_ziln).")
@json_option
@click.pass_context
def bench_cdnow(ctx: click.Context, cdnow_path: Path | None, sample: bool, folds: int,
                json_path: Path | None) -> None:
    """Real-data accuracy on CDNOW (docs/evaluation.md protocol) beside published reference rows.

    Imports CDNOW_master.txt (clv import cdnow), builds features with dbt and Feast at
    1997-10-01, predicts spend in the 273-day holdout for all 23,570 customers and prints the
    metrics beside the published reference rows. BG/NBD + Gamma-Gamma and naive use calibration
    data only; xgboost and deep_ziln are cross-fitted by customer (each fold predicted by models
    trained on the other folds' customers, with their rows at every month start 1997-02-01 ..
    1997-10-01). A second table transforms the models' predictions to show what Spearman and
    MAE reward on this target; a third measures the frontier of mixes of each learner with
    BG/NBD + Gamma-Gamma (what the targets allow). Model settings: the configuration's, with
    the benchmark's own choices for XGBoost (Tweedie power 1.2, depth 3) unless --set gives
    them. The data live in DATA_DIR/bench-cdnow unless --data-dir is given.
    """

    from clv_models.bench.cdnow import (
        MODEL_SETTINGS,
        cdnow_table,
        diagnostics_table,
        frontier_table,
    )
    from clv_models.bench.cdnow import bench_cdnow as run_bench

    given = ctx.obj["overrides"]
    overrides = {k: v for k, v in MODEL_SETTINGS.items() if k not in given}
    if "data_dir" not in given:
        overrides["data_dir"] = config(ctx).data_dir / "bench-cdnow"
    result = run_bench(config(ctx, **overrides), cdnow_path, folds=folds, echo=console.print,
                       sample=sample)
    console.print(f"{result.extra['seconds']['total']:.0f} s")
    emit(result, json_path, [cdnow_table(result), diagnostics_table(result),
                             frontier_table(result)])
