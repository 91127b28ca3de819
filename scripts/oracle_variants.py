"""Deep-model variants against the oracle on a built, generated shop (an experiment, not a test).

Trains ``DeepCLV`` with each variant's settings (and seeds) on the shop's fit rows, stops early
on the validation date as ``clv train`` does, and prints each run's normalized Gini on the
evaluation rows, its share of the oracle's and the Gini of the seeds' averaged predictions. This
is how docs/benchmarks.md's oracle section compares settings; ``clv bench oracle`` measures the
product's defaults.

Usage::

    python scripts/oracle_variants.py --data-dir data/bench-oracle-100000 \\
        --variants '{"defaults": {"seeds": [0, 1, 2]}, "wide": {"hidden": [256, 128]}}'

``--oracle-target FLOOR`` trains on the oracle's expected values (floored at ``FLOOR``: the
lognormal part needs positive values) instead of the outcomes, as ``feature_ceiling`` does for
XGBoost; the evaluation is always against the real outcomes.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd

from clv_models.core import metrics
from clv_models.core.config import DeepConfig, load_config
from clv_models.evaluation.evaluation import oracle_rows
from clv_models.models import training
from clv_models.models.deep import DeepCLV


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True, help="a built and materialized shop")
    parser.add_argument("--variants", default='{"defaults": {}}',
                        help='JSON: {"name": {DeepConfig fields..., "seeds": [0, 1]}}')
    parser.add_argument("--oracle-target", type=float, default=None, metavar="FLOOR",
                        help="train on the oracle's values floored at FLOOR")
    args = parser.parse_args()

    cfg = load_config(None, {"data_dir": args.data_dir}).resolved()
    start = time.perf_counter()
    data = training.load_training_set(cfg)
    print(f"training set retrieved in {time.perf_counter() - start:.0f} s", flush=True)
    fit, val, ev = data.part("fit"), data.part("validation"), data.part("evaluation")
    y_fit, y_val = fit[training.TARGET].to_numpy(float), val[training.TARGET].to_numpy(float)
    if args.oracle_target is not None:
        oracle = oracle_rows(cfg, pd.concat([fit, val]))
        if oracle is None:
            raise SystemExit("the oracle does not cover every training row")
        targets = np.maximum(oracle["expected_net_revenue"].to_numpy(float), args.oracle_target)
        y_fit, y_val = targets[:len(fit)], targets[len(fit):]
    y = ev[training.TARGET].to_numpy(float)
    oracle = oracle_rows(cfg, ev)
    if oracle is None:
        raise SystemExit("the oracle does not cover every evaluation row")
    oracle_gini = metrics.normalized_gini(y, oracle["expected_net_revenue"].to_numpy())
    print(f"fit {len(fit):,} rows, validation {len(val):,}, evaluation {len(ev):,}; "
          f"oracle normalized Gini {oracle_gini:.4f}", flush=True)

    cols = data.columns("clv_v2")
    for name, settings in json.loads(args.variants).items():
        settings = dict(settings)
        seeds = settings.pop("seeds", [cfg.seed])
        predictions = []
        for seed in seeds:
            start = time.perf_counter()
            model = DeepCLV(DeepConfig(**settings), seed=seed)
            model.fit(fit[cols], y_fit, val[cols], y_val)
            predicted = model.predict(ev[cols]).predicted_clv
            predictions.append(predicted)
            gini = metrics.normalized_gini(y, predicted)
            print(f"  {name}, seed {seed}: Gini {gini:.4f} ({gini / oracle_gini:.4f} of the "
                  f"oracle), pred/actual {predicted.sum() / y.sum():.3f}, "
                  f"{model.metadata['epochs_run']} epochs (best {model.metadata['best_epoch']}), "
                  f"{time.perf_counter() - start:.0f} s", flush=True)
        gini = metrics.normalized_gini(y, np.mean(predictions, axis=0))
        print(f"{name}: Gini of the {len(seeds)} seeds' mean {gini:.4f} "
              f"({gini / oracle_gini:.4f} of the oracle)", flush=True)


if __name__ == "__main__":
    main()
