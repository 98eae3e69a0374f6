"""Results files, grids that resume, and reports."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from dcs_lib import DCSError
from dcs_lib.experiments import append_record, check_writable, load_results, read_grid, run_id
from dcs_lib.methods import RunConfig
from dcs_lib.report import paired_difference, runs_frame, summary, write_report

from .conftest import ROOT


def fake_record(task="rte", method="dcs", seed=1, best=0.6, final=0.55):
    return {"task": task, "method": method, "seed": seed, "metric": "accuracy", "config": {"lam": 1.0},
            "epochs": [{"epoch": 1, "dev": {"accuracy": best}}, {"epoch": 2, "dev": {"accuracy": final}}],
            "best": {"epoch": 1, "accuracy": best}, "final": {"epoch": 2, "accuracy": final}, "wall_s": 1.0}


def test_append_and_load_skip_a_corrupt_line_with_a_warning(tmp_path):
    path = tmp_path / "results.jsonl"
    append_record(path, fake_record(seed=1))
    with open(path, "a") as f:
        f.write('{"task": "rte", "method": "dc')  # a line cut short by a crash
    append_record(path, fake_record(seed=2))
    with pytest.warns(UserWarning, match=r"results.jsonl: line 2: skipped"):
        records = load_results(path)
    assert [r["seed"] for r in records] == [1, 2]
    assert path.read_text().count("\n") == 3  # the cut line stayed its own line
    assert not list(tmp_path.glob(".*tmp"))


def test_a_read_only_results_folder_fails_before_training(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        with pytest.raises(DCSError, match="cannot write results to"):
            check_writable(folder / "results.jsonl")
    finally:
        folder.chmod(0o700)


def test_a_full_disk_fails_before_training(tmp_path, monkeypatch):
    import errno

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(DCSError, match="cannot write results to .*results.jsonl: No space left on device"):
        check_writable(tmp_path / "results.jsonl")
    assert not list(tmp_path.iterdir())  # the probe file is gone too


def test_grid_file_expands_in_order_and_checks_keys(tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text('[base]\nepochs = 2\n\n[[grid]]\ntask = ["rte", "mrpc"]\nmethod = ["vanilla", "dcs"]\nseed = 1\n\n'
                    '[[grid]]\ntask = "rte"\nmethod = "dcs"\nlam = [0.0, 2.0]\n')
    configs = read_grid(grid)
    assert [(c.task, c.method, c.lam) for c in configs] == [
        ("rte", "vanilla", 1.0), ("rte", "dcs", 1.0), ("mrpc", "vanilla", 1.0), ("mrpc", "dcs", 1.0),
        ("rte", "dcs", 0.0), ("rte", "dcs", 2.0)]
    assert all(c.epochs == 2 for c in configs)
    grid.write_text('[[grid]]\nlamda = [1, 2]\n')
    with pytest.raises(DCSError, match="unknown setting 'lamda'"):
        read_grid(grid)
    grid.write_text('[[grid]]\nalpha = [0.5, 2.0]\n')
    with pytest.raises(DCSError, match=r"alpha must be in \[0, 1\]"):
        read_grid(grid)


def test_run_id_ignores_where_data_lives_but_not_settings():
    assert run_id(RunConfig(data_dir="a")) == run_id(RunConfig(data_dir="b", task="RTE"))
    assert run_id(RunConfig(lam=1.0)) != run_id(RunConfig(lam=2.0))


def test_report_tables_and_paired_bootstrap(tmp_path):
    records = [fake_record(method=m, seed=s, final=f) for m, s, f in [
        ("vanilla", 1, 0.50), ("vanilla", 2, 0.60), ("dcs", 1, 0.53), ("dcs", 2, 0.62)]]
    frame = runs_frame(records)
    table = summary(frame)
    dcs = table[table["method"] == "dcs"].iloc[0]
    assert dcs["final_mean"] == pytest.approx(57.5) and dcs["runs"] == 2
    paired = paired_difference(frame)
    assert paired.iloc[0]["mean_diff"] == pytest.approx(2.5)
    assert 2.0 <= paired.iloc[0]["ci_low"] <= paired.iloc[0]["ci_high"] <= 3.0
    paths = write_report(records, tmp_path / "report")
    assert paths["plot"].stat().st_size > 1000 and "| rte | accuracy |" in paths["summary"].read_text()


def test_a_grid_killed_midway_resumes_with_every_run_once(tmp_path, tiny_model, glue):
    grid = tmp_path / "grid.toml"
    grid.write_text(f'[base]\nmodel = "{tiny_model}"\nn_train = 240\nn_dev = 16\nepochs = 2\nteacher_epochs = 1\n'
                    f'batch_size = 8\n\n[[grid]]\nmethod = ["vanilla", "dcs"]\nseed = [1, 2, 3]\n')
    results = tmp_path / "results.jsonl"
    command = [sys.executable, "-m", "dcs_lib", "grid", str(grid), "--results", str(results),
               "--data-dir", str(glue), "--cache-dir", str(tmp_path / "cache"), "--no-progress"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 300
    while time.time() < deadline and not results.exists():
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)  # Ctrl-C, in the middle of the second run or so
    output = process.communicate(timeout=120)[0].decode()
    assert process.returncode == 130, output
    assert "run the same command again to resume" in output
    finished = len(load_results(results))
    assert 1 <= finished < 6

    rerun = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.count("already in") == finished
    records = load_results(results)
    assert sorted((r["method"], r["seed"]) for r in records) == sorted(
        (m, s) for m in ("vanilla", "dcs") for s in (1, 2, 3))
    assert len({r["run_id"] for r in records}) == 6
