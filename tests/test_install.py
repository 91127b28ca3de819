"""A non-editable install works away from the checkout: the wheel carries the dbt project and the
Feast repository, and `clv` finds them from another directory."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.e2e  # builds a wheel and runs dbt


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """The wheel of this checkout installed (without its dependencies, which this environment
    has) into a folder of its own, and the environment that imports from there only."""
    base = tmp_path_factory.mktemp("install")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                            "--no-build-isolation", "-w", str(base / "dist"), str(REPO)],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    wheel = next((base / "dist").glob("clv_models-*.whl"))
    site = base / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--target",
                              str(site), str(wheel)], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-2000:]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLV_", "DBT_"))}
    env["PYTHONPATH"] = str(site)  # ahead of the checkout's editable install
    return site, env


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_the_wheel_runs_clv_and_finds_its_projects_from_another_directory(installed, tmp_path):
    site, env = installed
    where = run(["-c", "import clv_models, clv_models.core.paths as p; print(clv_models.__file__);"
                 " print(p.project_folder('warehouse')); print(p.project_folder('feature_repo'))"],
                env, tmp_path)
    assert where.returncode == 0, where.stderr
    package, warehouse, feature_repo = where.stdout.split()
    assert Path(package).is_relative_to(site)
    assert Path(warehouse) == site / "clv_models" / "project" / "warehouse"
    assert (Path(feature_repo) / "features.py").exists()
    assert not list(Path(warehouse).rglob("target"))  # no build output shipped
    help_ = run(["-m", "clv_models.cli", "--help"], env, tmp_path)
    assert help_.returncode == 0 and "build" in help_.stdout
    # dbt parses the shipped project, writing only under the data directory.
    data = tmp_path / "data"
    (data / "raw").mkdir(parents=True)
    (data / "raw" / "orders.csv").write_text("order_id,customer_id,ordered_at,order_total\n"
                                            "o1,c1,2024-01-05,10\no2,c1,2024-09-01,5\n")
    env_out = run(["-m", "clv_models.cli", "--data-dir", str(data), "env"], env, tmp_path)
    assert env_out.returncode == 0, env_out.stderr
    exports = dict(line.removeprefix("export ").split("=", 1)
                   for line in env_out.stdout.splitlines() if line.startswith("export "))
    dbt_env = {**env, **{k: shlex.split(v)[0] for k, v in exports.items()}}
    dbt = Path(sys.executable).parent / "dbt"
    parsed = subprocess.run([str(dbt), "parse", "--profiles-dir", ".", "--vars",
                             dbt_env["CLV_DBT_VARS"]], cwd=warehouse, env=dbt_env,
                            capture_output=True, text=True, timeout=300)
    assert parsed.returncode == 0, parsed.stdout[-3000:]
    assert (data / "dbt" / "target" / "manifest.json").exists()
