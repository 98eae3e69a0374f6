"""Results files, grids that resume, and reports."""

import pytest

from dcs_lib import DCSError
from dcs_lib.experiments import read_grid, run_id
from dcs_lib.methods import RunConfig
from dcs_lib.report import paired_difference, runs_frame, summary, write_report


def fake_record(task="rte", method="dcs", seed=1, best=0.6, final=0.55):
    return {
        "task": task,
        "method": method,
        "seed": seed,
        "metric": "accuracy",
        "config": {"lam": 1.0},
        "epochs": [{"epoch": 1, "dev": {"accuracy": best}}, {"epoch": 2, "dev": {"accuracy": final}}],
        "best": {"epoch": 1, "accuracy": best},
        "final": {"epoch": 2, "accuracy": final},
        "wall_s": 1.0,
    }


def test_grid_file_expands_in_order_and_checks_keys(tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text(
        '[base]\nepochs = 2\n\n[[grid]]\ntask = ["rte", "mrpc"]\nmethod = ["vanilla", "dcs"]\nseed = 1\n\n'
        '[[grid]]\ntask = "rte"\nmethod = "dcs"\nlam = [0.0, 2.0]\n'
    )
    configs = read_grid(grid)
    assert [(c.task, c.method, c.lam) for c in configs] == [
        ("rte", "vanilla", 1.0),
        ("rte", "dcs", 1.0),
        ("mrpc", "vanilla", 1.0),
        ("mrpc", "dcs", 1.0),
        ("rte", "dcs", 0.0),
        ("rte", "dcs", 2.0),
    ]
    assert all(c.epochs == 2 for c in configs)
    grid.write_text("[[grid]]\nlamda = [1, 2]\n")
    with pytest.raises(DCSError, match="unknown setting 'lamda'"):
        read_grid(grid)
    grid.write_text("[[grid]]\nalpha = [0.5, 2.0]\n")
    with pytest.raises(DCSError, match=r"alpha must be in \[0, 1\]"):
        read_grid(grid)


def test_run_id_ignores_where_data_lives_but_not_settings():
    assert run_id(RunConfig(data_dir="a")) == run_id(RunConfig(data_dir="b", task="RTE"))
    assert run_id(RunConfig(lam=1.0)) != run_id(RunConfig(lam=2.0))


def test_report_tables_and_paired_bootstrap(tmp_path):
    records = [
        fake_record(method=m, seed=s, final=f)
        for m, s, f in [("vanilla", 1, 0.50), ("vanilla", 2, 0.60), ("dcs", 1, 0.53), ("dcs", 2, 0.62)]
    ]
    frame = runs_frame(records)
    table = summary(frame)
    dcs = table[table["method"] == "dcs"].iloc[0]
    assert dcs["final_mean"] == pytest.approx(57.5) and dcs["runs"] == 2
    paired = paired_difference(frame)
    assert paired.iloc[0]["mean_diff"] == pytest.approx(2.5)
    assert 2.0 <= paired.iloc[0]["ci_low"] <= paired.iloc[0]["ci_high"] <= 3.0
    paths = write_report(records, tmp_path / "report")
    assert paths["plot"].stat().st_size > 1000 and "| rte | accuracy |" in paths["summary"].read_text()
