"""Fuzz both HTTP APIs from their OpenAPI schemas, long: ``clv serve`` and ``feast serve``.

The long form of ``tests/test_security.py``'s fuzz tests (the same runs of
:func:`tests.harness.fuzz.fuzz`, with many more examples and a new seed each time). It starts, on
free loopback ports:

* ``clv serve`` (deep_ziln) with a random bearer token: every schemathesis check, the token
  sent, half the generated ids real customers;
* ``feast serve`` on the data directory's online store: the read contract (must never 5xx)
  and every read operation with valid and malformed input;
* ``feast serve`` on a scratch copy (own registry, online store and features): the write
  operations (push, write-to-online-store, materialize), which would otherwise change the data.

It prints, per run, the test cases generated, the requests sent, the 5xx (Feast's documented
ones grouped by cause, see ``tests.harness.fuzz.FEAST_KNOWN_5XX``) and any failure, and exits 1
when a run has an unexplained 5xx, a failed check on our endpoint or a broken run. A data
directory without a trained model gets the whole chain first (``--customers``). Not a test:
run it by hand, e.g.

    python scripts/fuzz_apis.py --examples 500
    python scripts/fuzz_apis.py --data-dir data --examples 2000 --json fuzz.json
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from clv_models.bench.serving import _ensure_chain, free_port, http_server, store_data_dir  # noqa: E402
from clv_models.core.config import OnlineStoreConfig, load_config  # noqa: E402
from clv_models.features import store as features  # noqa: E402
from tests.harness import fuzz  # noqa: E402


def _feast_cmd(port: int) -> list[str]:
    # --max-requests 0: gunicorn's default recycles the worker after ~1,000 requests,
    # dropping the connection in flight (a "Network Error" that is not the API's doing).
    return [str(Path(sys.executable).parent / "feast"), "serve", "--port", str(port),
            "--no-access-log", "--max-requests", "0"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path,
                        help="a data directory with a trained model (default: a new "
                             "temporary one, built first)")
    parser.add_argument("--customers", type=int, default=2_000,
                        help="customers of the shop generated when the data directory "
                             "has no trained model")
    parser.add_argument("--examples", type=int, default=300,
                        help="schemathesis --max-examples: cases per operation and phase")
    parser.add_argument("--seed", type=int, help="reproduce a run (default: a new seed)")
    parser.add_argument("--workers", type=int, default=1, help="concurrent requests")
    parser.add_argument("--json", type=Path, help="write the counts and failures here")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="clv-fuzz-"))
    data_dir = args.data_dir or scratch / "data"
    cfg = load_config(None, {"data_dir": data_dir, "shop.customers": args.customers}).resolved()
    _ensure_chain(cfg, "deep_ziln", None, print)
    ids = fuzz.sample_customer_ids(cfg, 50)
    token = secrets.token_urlsafe(32)
    env = {**os.environ, **cfg.env(), "CLV_API_TOKEN": token}
    writer_cfg = store_data_dir(cfg, scratch / "feast-writer", OnlineStoreConfig(),
                                copies=("features",))
    features.apply(writer_cfg)
    common = {"max_examples": args.examples, "seed": args.seed, "workers": args.workers,
              "timeout": 6 * 3600}
    results: list[fuzz.FuzzResult] = []
    port = free_port()
    clv_cmd = [sys.executable, "-m", "clv_models.cli", "--data-dir", str(cfg.data_dir),
               "serve", "--port", str(port), "--log-level", "warning"]
    print(f"fuzzing clv serve ({args.examples} examples per operation and phase) ...")
    with http_server(clv_cmd, port, REPO, env, scratch / "clv-serve.log") as base:
        results.append(fuzz.fuzz(
            "clv", base, scratch, checks="all", headers={"Authorization": f"Bearer {token}"},
            config=fuzz.clv_config(scratch / "clv.toml", ids), **common))
    print(results[-1].summary())
    feast_config = fuzz.feast_config(scratch / "feast.toml", cfg, ids)
    port = free_port()
    print("fuzzing feast serve (reads) ...")
    with http_server(_feast_cmd(port), port, cfg.feature_repo_dir, env,
                     scratch / "feast-reader.log") as base:
        contract = fuzz.write_config(scratch / "contract.toml", {"customers": ids},
                                     {"body.entities.customer_id[*]": ("customers", 0.5)})
        results.append(fuzz.fuzz(
            "feast-contract", base, scratch, mode="positive", config=contract,
            schema=fuzz.feast_contract_file(scratch / "contract.json", cfg, base), **common))
        print(results[-1].summary())
        results.append(fuzz.fuzz("feast-read", base, scratch, config=feast_config,
                                 include_paths=fuzz.FEAST_READ_PATHS,
                                 explain=fuzz.explain_feast, **common))
        print(results[-1].summary())
    port = free_port()
    print("fuzzing feast serve (writes, on a scratch copy) ...")
    with http_server(_feast_cmd(port), port, writer_cfg.feature_repo_dir,
                     {**os.environ, **writer_cfg.env()}, scratch / "feast-writer.log") as base:
        results.append(fuzz.fuzz("feast-write", base, scratch, config=feast_config,
                                 include_paths=fuzz.FEAST_WRITE_PATHS,
                                 explain=fuzz.explain_feast, **common))
    print(results[-1].summary())

    # Every check on our endpoint; on Feast's, any 5xx not documented (none at all in the
    # contract run, which has no explainer).
    ok = {r.api: r.ok(checks=r.api == "clv") for r in results}
    print("\ncases run: " + ", ".join(f"{r.api} {r.cases:,} ({r.requests:,} requests)"
                                      for r in results))
    print("result: " + ("no unexplained 5xx, no failed check" if all(ok.values()) else
                        "FAILED: " + ", ".join(api for api, good in ok.items() if not good)))
    print(f"reports: {scratch}")
    if args.json:
        args.json.write_text(json.dumps({"runs": [{
            "api": r.api, "cases": r.cases, "requests": r.requests, "seed": r.seed,
            "seconds": round(r.seconds, 1),
            "ok": ok[r.api], "server_errors": len(r.server_errors),
            "unexplained": [e.describe() for e in fuzz.unique_cases(r.unexplained)],
            "failed_checks": r.check_failures, "errors": r.errors,
            "documented_5xx": dict(r.labels()),
            "statuses": {f"{m} {p} {s}": n for (m, p, s), n in sorted(r.statuses.items())},
        } for r in results]}, indent=2, default=str))
    return 0 if all(ok.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
