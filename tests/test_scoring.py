"""Scored-table rules that need no warehouse: segments, and the rows one model produces."""

import datetime as dt

import numpy as np
import pandas as pd

from clv_models.core.config import Config
from clv_models.models import NaiveCLV
from clv_models.scoring.score import SEGMENTS, score_frame, segments
from clv_models.warehouse.contract import column_names as scores_column_names


def test_segment_rules_on_hand_made_values():
    # one customer per rule, then the edges of each rule; "high historical value" >= 1000
    decile = np.array([1, 2, 3, 9, 10, 1, 5, 1, 2, 10, 10])
    p = np.array([0.9, 0.5, 0.7, 0.2, 0.1, 0.49, 0.5, 0.9, 0.8, 0.3, 0.3])
    t_days = np.array([30, 400, 500, 600, 700, 800, 90, 89, np.nan, 120, 120])
    net = np.array([10, 100, 50, 1000, 999, 2000, 400, 5000, 300, np.nan, 0])
    got = list(segments(decile, p, t_days, net, high_value=1000))
    assert got == ["new", "champions", "loyal", "at risk", "hibernating",  # one per rule
                   "at risk",  # top decile but p < 0.5
                   "loyal",  # p = 0.5 counts; t_days = 90 is no longer new
                   "new",  # new wins over everything else
                   "champions",  # missing t_days: not new
                   "hibernating", "hibernating"]  # missing / zero history: not at risk
    assert set(got) <= set(SEGMENTS)
    # By default "high historical value" is the 80th percentile of the scored customers.
    net = np.arange(10.0)
    default = segments(np.full(10, 10), np.zeros(10), np.full(10, 365), net)
    assert list(default == "at risk") == [False] * 8 + [True] * 2  # 8 and 9 >= 7.2
def test_segments_without_p_purchase_use_the_decile():
    got = segments(np.array([1, 4, 8]), None, np.array([200, 200, 200]), np.zeros(3))
    assert list(got) == ["champions", "loyal", "hibernating"]


def test_score_frame_fills_every_column_of_the_scored_table():
    frame = pd.DataFrame({"customer_id": [f"C{i:03d}" for i in range(50)],
                          "net_revenue": np.linspace(0, 500, 50), "order_count": 3,
                          "t_days": np.linspace(10, 700, 50)})
    model = NaiveCLV(horizon_days=90)
    rows = score_frame(model, frame, dt.date(2025, 1, 1), "run", dt.datetime(2025, 1, 2))
    assert list(rows.columns) == scores_column_names(Config().warehouse_dir)
    assert rows["segment"].isin(SEGMENTS).all()
    assert (rows.loc[frame["t_days"] < 90, "segment"] == "new").all()
    assert rows["clv_p50"].isna().all()  # the naive model gives no quantiles
