"""Sustained load on the online servers: ``clv serve`` (the CLV endpoint) and ``feast serve``.

Steps the batch-1 request rate up (load from a second process on loopback, the load generator
of ``clv bench serving``) to the highest rate whose p99 still meets the target (10 ms, no
errors), then holds that rate for at least 60 s while sampling the server's resident memory
every second; reports requests, errors, p50/p99, RSS at start/end/max and its slope (see
:mod:`clv_models.bench.load`). Not a test: run it by hand on a quiet machine, e.g.

    python scripts/load_test.py --data-dir data/bench-serving-20000 --json load.json
    python scripts/load_test.py --store redis --model xgboost --servers clv

The data directory's chain (a generated shop of ``--customers``) runs first when it has no
trained model; by default it is the shop of ``clv bench serving``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from clv_models.bench.load import DEFAULT_RATES, SERVERS, TARGET_P99_MS, load_test
from clv_models.bench.models import default_data_dir
from clv_models.core.config import load_config


def table(result) -> Table:
    """Steps and holds as a terminal table."""
    out = Table(title="load test (batch 1, load from a second process on loopback)")
    for col in ("measure", "store", "phase", "offered/s", "achieved/s", "requests", "errors",
                "p50 ms", "p99 ms", "memory", "met", "load avg"):
        out.add_column(col, justify="left" if col in {"measure", "store", "phase", "memory"}
                       else "right")
    for r in result.rows:
        memory = ""
        if r["phase"] == "hold":
            memory = (f"RSS {r['rss_start_mb']} -> {r['rss_end_mb']} MB (max "
                      f"{r['rss_max_mb']}), {r['rss_slope_mb_per_min']} MB/min")
        out.add_row(r["measure"], r["store"], r["phase"], f"{r['offered_rps']:g}",
                    str(r["throughput_rps"]), str(r["requests"]), str(r["errors"]),
                    str(r["p50_ms"]), str(r["p99_ms"]), memory, str(r["met"]),
                    str(r["load_average"]))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, help="clv.yaml (default: ./clv.yaml)")
    parser.add_argument("--data-dir", type=Path,
                        help="The shop to serve (default: DATA_DIR/bench-serving-<customers>).")
    parser.add_argument("--customers", type=int, default=20_000,
                        help="Customers of the shop generated when the data directory has none.")
    parser.add_argument("--servers", nargs="+", choices=SERVERS, default=list(SERVERS))
    parser.add_argument("--store", choices=("sqlite", "redis"), default="sqlite")
    parser.add_argument("--redis-url", help="An existing Redis database (default: a "
                                            "throw-away redis-server on a free port).")
    parser.add_argument("--model", default="deep_ziln",
                        choices=("deep_ziln", "xgboost", "bgnbd_gg", "naive"))
    parser.add_argument("--rates", type=float, nargs="+", default=list(DEFAULT_RATES),
                        help="Request rates to step through, ascending.")
    parser.add_argument("--step-seconds", type=float, default=10.0)
    parser.add_argument("--hold-seconds", type=float, default=60.0)
    parser.add_argument("--warmup-seconds", type=float, default=10.0,
                        help="Start of the hold left out of the memory slope.")
    parser.add_argument("--target-ms", type=float, default=TARGET_P99_MS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="Also write the figures as JSON.")
    args = parser.parse_args(argv)
    if sorted(args.rates) != args.rates:
        parser.error("--rates must be ascending")

    overrides = {"shop.customers": args.customers}
    cfg = load_config(args.config, overrides)
    overrides["data_dir"] = args.data_dir or default_data_dir(cfg, "serving", args.customers)
    cfg = load_config(args.config, overrides)
    console = Console()
    if not console.is_terminal:  # a log file: wide enough for the table
        console = Console(width=170)
    result = load_test(cfg, servers=tuple(args.servers), store=args.store,
                       redis_url=args.redis_url, model=args.model, rates=tuple(args.rates),
                       step_seconds=args.step_seconds, hold_seconds=args.hold_seconds,
                       warmup_seconds=args.warmup_seconds, target_ms=args.target_ms,
                       seed=args.seed, echo=console.print)
    console.print(table(result))
    console.print(f"device: {result.as_json()['device']}")
    if args.json:
        args.json.write_text(json.dumps(result.as_json(), indent=2, default=str))
        console.print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
