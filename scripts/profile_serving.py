"""Per-stage timings of the CLV endpoint's request path, in one process (no HTTP).

Loads the endpoint's service (:class:`clv_models.serving.app.CLVService`: model, Feast store,
decile reference) for a data directory and times, for random customers one request at a time:
the online read (:class:`clv_models.features.online_lookup.OnlineLookup`), Feast's own
``get_online_features(...).to_dict()`` of the same references (for comparison), the model's
predict, and the whole ``score`` (read, predict, deciles, segments, result). ``--paced`` sleeps
10 ms between calls, as a server at 100 requests/s does (cold caches cost more than a tight
loop); ``--cprofile`` prints the functions where ``score`` spends its time. Not a test: run
it by hand, e.g.

    python scripts/profile_serving.py --data-dir data/bench-serving-20000 --model xgboost
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from clv_models.core.config import load_config
from clv_models.features import store as features
from clv_models.serving.app import CLVService, _single_threaded_torch


def timings(fn: Callable[[list[str]], object], ids: list[str], n: int, batch: int,
            paced: bool, seed: int) -> str:
    """p50 / p99 / mean in ms of ``fn`` on ``n`` random batches of ``batch`` ids."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        chunk = [ids[j] for j in rng.choice(len(ids), batch, replace=False)]
        if paced:
            time.sleep(0.01)
        start = time.perf_counter()
        fn(chunk)
        out.append((time.perf_counter() - start) * 1000)
    lat = np.array(out)
    return (f"p50 {np.percentile(lat, 50):7.2f}  p99 {np.percentile(lat, 99):7.2f}  "
            f"mean {lat.mean():7.2f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--model", default="deep_ziln",
                        choices=("deep_ziln", "xgboost", "bgnbd_gg", "naive"))
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--paced", action="store_true", help="10 ms between calls")
    parser.add_argument("--cprofile", action="store_true")
    args = parser.parse_args(argv)

    cfg = load_config(None, {"data_dir": args.data_dir})
    service = CLVService(cfg, args.model)
    _single_threaded_torch()
    _, entities = features.scoring_entities(cfg)
    ids = entities[features.ENTITY_KEY].astype(str).tolist()
    refs = list(dict.fromkeys(service.refs))
    columns = [service.online_rows([c])[0] for c in ids[:200]]
    service.score(ids[:50])  # warm-up

    def feast_read(chunk: list[str]) -> object:
        return service.store.get_online_features(
            features=refs, entity_rows=[{features.ENTITY_KEY: c} for c in chunk]
        ).to_dict(include_event_timestamps=True)

    def predict(chunk: list[str]) -> object:
        row = columns[hash(chunk[0]) % len(columns)]
        if args.batch == 1:
            return service.model.predict(row)
        return service.model.predict(service.online_rows(chunk)[0])

    stages = {
        "online read (OnlineLookup)": service.online_rows,
        "Feast get_online_features+to_dict": feast_read,
        "model predict" + (" (incl. read)" if args.batch > 1 else ""): predict,
        "score (read+predict+deciles+segments)": service.score,
    }
    print(f"{service.model.name} {service.model.version}, {len(refs)} features, batch "
          f"{args.batch}, {args.requests} calls{' paced 10 ms' if args.paced else ''}")
    for i, (name, fn) in enumerate(stages.items()):
        print(f"  {name:40s} {timings(fn, ids, args.requests, args.batch, args.paced, i)}")
    if args.cprofile:
        profile = cProfile.Profile()
        profile.enable()
        timings(service.score, ids, args.requests, args.batch, False, 99)
        profile.disable()
        pstats.Stats(profile).sort_stats("cumulative").print_stats(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
