import datetime as dt
import json

import pytest

from clv_models.core.config import (
    Config,
    ConfigError,
    ScheduleConfig,
    apply_overrides,
    load_config,
)


def test_month_schedule_runs_to_the_day_after_the_data():
    s = ScheduleConfig(start=dt.date(2023, 7, 1), every=1, unit="month")
    dates = s.dates(dt.date(2026, 1, 1))
    assert dates[0] == dt.date(2023, 7, 1)
    assert dates[-1] == dt.date(2026, 1, 1)
    assert len(dates) == 31


def test_week_and_day_schedules():
    assert ScheduleConfig(start=dt.date(2024, 1, 1), every=4, unit="week").dates(
        dt.date(2024, 3, 1)) == [dt.date(2024, 1, 1), dt.date(2024, 1, 29), dt.date(2024, 2, 26)]
    assert len(ScheduleConfig(start=dt.date(2024, 1, 1), every=10, unit="day").dates(
        dt.date(2024, 1, 31))) == 4


def test_bad_schedule_is_a_clear_error():
    with pytest.raises(ConfigError, match="unit"):
        ScheduleConfig(unit="fortnight").dates(dt.date(2025, 1, 1))
    with pytest.raises(ConfigError, match="day 1-28"):
        ScheduleConfig(start=dt.date(2024, 1, 31)).dates(dt.date(2025, 1, 1))


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "clv.yaml"
    path.write_text("data_dir: shop\nhorizon_days: 90\nas_of:\n  every: 3\ndeep:\n  hidden: [32, 16]\n")
    cfg = load_config(path, {"horizon_days": "120", "deep.epochs": "3"})
    assert cfg.data_dir == tmp_path / "shop"  # relative to the config file
    assert cfg.horizon_days == 120
    assert cfg.as_of.every == 3
    assert cfg.deep.hidden == [32, 16]
    assert cfg.deep.epochs == 3


def test_unknown_setting_names_the_known_ones():
    with pytest.raises(ConfigError, match="unknown setting deep.epoch"):
        load_config(None, {"deep.epoch": 3})
    with pytest.raises(ConfigError, match="bad value for horizon_days"):
        load_config(None, {"horizon_days": "soon"})
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(__import__("pathlib").Path("/nonexistent/clv.yaml"))


def test_dbt_vars_and_env_carry_the_schedule_and_absolute_paths(tmp_path):
    cfg = load_config(None, {"data_dir": tmp_path / "d", "as_of.unit": "week"})
    assert cfg.dbt_vars()["as_of_unit"] == "week"
    env = cfg.env()
    assert env["CLV_RAW_DIR"] == str((tmp_path / "d" / "raw").resolve())
    paths = ("CLV_DATA_DIR", "CLV_RAW_DIR", "CLV_WAREHOUSE_PATH", "CLV_FEATURES_DIR",
             "CLV_FEAST_DIR")
    assert all(env[k].startswith("/") for k in paths)
    assert json.loads(env["CLV_ONLINE_STORE"]) == {
        "type": "sqlite", "path": str((tmp_path / "d" / "feast" / "online_store.db").resolve())}


def test_committed_clv_yaml_spells_out_the_code_defaults():
    from clv_models.core.config import Config
    from tests.conftest import REPO as PROJECT_ROOT

    from_file = load_config(PROJECT_ROOT / "clv.yaml")
    defaults = Config()
    defaults.data_dir = PROJECT_ROOT / "data"
    assert from_file == defaults


def test_a_data_dir_dbt_cannot_quote_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="single quote"):
        load_config(None, {"data_dir": tmp_path / "it's data"})
    assert load_config(None, {"data_dir": tmp_path / "plain data"}).data_dir.name == "plain data"


def test_auto_start_is_the_first_boundary_after_the_warmup():
    auto = ScheduleConfig()  # start: auto, warm-up 180 days, monthly
    assert auto.first_date(dt.date(2023, 1, 1)) == dt.date(2023, 7, 1)  # 2023-06-30 + rounding
    assert auto.first_date(dt.date(2023, 1, 3)) == dt.date(2023, 8, 1)  # 2023-07-02 rounds up
    weekly = ScheduleConfig(unit="week", warmup_days=7)
    assert weekly.first_date(dt.date(2023, 1, 3)) == dt.date(2023, 1, 16)  # the next Monday
    assert ScheduleConfig(unit="day", warmup_days=0).first_date(dt.date(2023, 1, 3)) == \
        dt.date(2023, 1, 3)
    fixed = ScheduleConfig(start=dt.date(2024, 2, 1))
    assert fixed.first_date(dt.date(1999, 1, 1)) == dt.date(2024, 2, 1)
    assert apply_overrides(Config(), {"as_of.start": "auto"}).as_of.start is None
    assert apply_overrides(Config(), {"as_of.start": "2024-02-01"}).as_of.start == \
        dt.date(2024, 2, 1)


def test_auto_start_of_data_shorter_than_the_warmup_skips_the_warmup():
    auto = ScheduleConfig()
    assert auto.first_date(dt.date(2024, 1, 10), last_event=dt.date(2024, 3, 5)) == \
        dt.date(2024, 2, 1)
    assert auto.first_date(dt.date(2024, 1, 10), last_event=dt.date(2025, 3, 5)) == \
        dt.date(2024, 8, 1)
