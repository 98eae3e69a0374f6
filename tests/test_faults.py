"""Faults and bad input: each case, and the clear error or the recovery it gets.

| case | outcome | test |
|---|---|---|
| SIGKILL during epoch 3, then --resume | same dev metrics, weights and model as an uninterrupted run | test_checkpoint.py |
| truncated or foreign checkpoint | refused, naming the file and the mismatch; nothing overwritten | test_checkpoint.py |
| SIGINT in the middle of a grid, then rerun | exit 130; the rerun skips finished runs; every run once | here |
| read-only or full results folder or file, or a file where the folder should be | error before any training | here |
| a truncated line in a results file | skipped with a warning naming the line; the rest kept | here |
| TSV: wrong column count, unknown label, empty file, non-UTF-8 byte | one line naming file, line, column, value | here (and test_data.py) |
| model folder without a weights file | one line naming the folder and the files expected | here |
| grid file: a value of the wrong type or out of range | one line naming the file, the table and the setting | here |
| NaN in the loss | the run stops, naming the epoch and step | here |
"""

import dataclasses
import errno
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from dcs_lib import DCSError, NonFiniteLossError, cli, experiments, get_task
from dcs_lib.experiments import append_record, check_writable, load_results, read_grid, run_grid
from dcs_lib.methods import prepare_data, run_id
from dcs_lib.models import load_model, load_tokenizer
from dcs_lib.train import Objective, TrainConfig, fit

from .conftest import ROOT
from .test_cli import bad
from .test_experiments import fake_record


@pytest.mark.parametrize(
    "content, message",
    [
        (
            b"index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\tx\n",
            "train.tsv: line 3: expected 4 tab-separated columns, found 2",
        ),
        (
            b"index\tsentence1\tsentence2\tlabel\n0\ta\tb\tyes\n",
            "train.tsv: line 2, column 4 (label): unknown label 'yes'",
        ),
        (b"", "train.tsv: the file is empty"),
        (
            b"index\tsentence1\tsentence2\tlabel\n0\tna\xefve\tb\tentailment\n",
            "train.tsv: line 2, column 5: byte 0xef is not valid UTF-8",
        ),
    ],
)
def test_broken_tsv_files_through_the_command_line(tmp_path, content, message):
    (tmp_path / "RTE").mkdir()
    (tmp_path / "RTE" / "train.tsv").write_bytes(content)
    assert message in bad("train", "--data-dir", tmp_path)


def test_a_bad_grid_value_through_the_command_line(tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text('[base]\nepochs = 2\n\n[[grid]]\nmethod = ["vanilla", "dcs"]\nlr = "5e-5"\n')
    message = bad("grid", grid, "--results", tmp_path / "r.jsonl")
    assert f"grid file {grid}: lr = '5e-5' ([[grid]] 1): must be of type float, got str" in message
    grid.write_text('[base]\nalpha = 2.0\n\n[[grid]]\nmethod = ["vanilla", "dcs"]\n')
    message = bad("grid", grid, "--results", tmp_path / "r.jsonl")
    assert f"grid file {grid}: alpha = 2.0 ([base]): alpha must be in [0, 1], got 2.0" in message


def test_model_folder_without_weights(tmp_path, tiny_model, glue):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    assert "has no weights: expected one of model.safetensors" in bad("train", "--model", folder, "--data-dir", glue)


def test_results_path_that_cannot_be_written(tmp_path):
    (tmp_path / "file").write_text("")
    assert "cannot write results to" in bad("train", "--results", tmp_path / "file" / "results.jsonl")


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


def test_a_results_folder_that_refuses_writes_fails_before_training(tmp_path, monkeypatch):
    """A read-only folder, as the OS reports it to any user, root included (root would pass a chmod)."""
    folder = tmp_path / "ro"
    folder.mkdir()

    def refused(*args, dir=None, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(dir))

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", refused)
    with pytest.raises(DCSError, match=f"cannot write results to {folder / 'results.jsonl'}: Permission denied$"):
        check_writable(folder / "results.jsonl")


def test_a_read_only_results_file_fails_before_training(tmp_path, monkeypatch):
    results = tmp_path / "results.jsonl"
    append_record(results, fake_record())
    results.chmod(0o444)
    real_access = os.access

    def access(path, mode, **kwargs):
        # root may write anywhere, so os.access says yes to it whatever the mode bits say
        if Path(path) == results and mode & os.W_OK:
            return False
        return real_access(path, mode, **kwargs)

    monkeypatch.setattr(os, "access", access)
    try:
        with pytest.raises(DCSError, match=f"cannot write results to {results}: {results} is read-only"):
            check_writable(results)
    finally:
        results.chmod(0o644)
    assert len(load_results(results)) == 1 and not [p for p in tmp_path.iterdir() if p != results]


def test_a_full_disk_fails_before_training(tmp_path, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(DCSError, match="cannot write results to .*results.jsonl: No space left on device"):
        check_writable(tmp_path / "results.jsonl")
    assert not list(tmp_path.iterdir())  # the probe file is gone too


def test_an_interrupted_grid_resumes_with_every_run_once(tiny, tmp_path):
    configs = [dataclasses.replace(tiny, method="vanilla", epochs=1, seed=seed) for seed in (1, 2, 3)]
    results = tmp_path / "results.jsonl"
    options = dict(cache_dir=tmp_path / "cache", progress=False)
    lines = []

    def ctrl_c_as_the_second_run_starts(line):
        lines.append(line)
        if line == "[2/3] rte vanilla seed=2: running":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_grid(configs, results, log=ctrl_c_as_the_second_run_starts, **options)
    assert [r["seed"] for r in load_results(results)] == [1]

    lines.clear()
    assert run_grid(configs, results, log=lines.append, **options) == 2
    assert lines[0] == f"[1/3] rte vanilla seed=1: already in {results}, skipped"
    assert [line for line in lines if line.endswith(": running")] == [
        "[2/3] rte vanilla seed=2: running",
        "[3/3] rte vanilla seed=3: running",
    ]
    records = load_results(results)
    assert [r["seed"] for r in records] == [1, 2, 3]
    assert [r["run_id"] for r in records] == [run_id(cfg) for cfg in configs]


def test_ctrl_c_in_a_grid_exits_with_130_and_says_how_to_resume(tmp_path, monkeypatch, capsys):
    grid = tmp_path / "grid.toml"
    grid.write_text('[[grid]]\nmethod = ["vanilla"]\n')

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(experiments, "run_grid", interrupted)
    assert cli.main(["grid", str(grid), "--results", str(tmp_path / "results.jsonl")]) == 130
    message = capsys.readouterr().err
    assert "interrupted: finished runs" in message and "run the same command again to resume" in message


# The grid command with Ctrl-C's default action, even where the tests run in a background job: that
# starts with SIGINT ignored, and Python then installs no KeyboardInterrupt handler of its own.
INTERRUPTIBLE_CLI = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
    "from dcs_lib import experiments\n"
    "from dcs_lib.cli import main\n"
    "record = experiments.append_record\n"
    # after the first record, wait a while, so that a fast machine cannot finish the grid before
    # the Ctrl-C arrives, and the Ctrl-C lands in a plain sleep rather than in some __del__
    "def record_then_wait(*args, **kwargs):\n"
    "    record(*args, **kwargs)\n"
    "    time.sleep(60)\n"
    "experiments.append_record = record_then_wait\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def test_sigint_stops_a_real_grid_with_130_and_a_rerun_completes_it(tmp_path, tiny_model, glue):
    seeds = [1, 2, 3]
    grid = tmp_path / "grid.toml"
    grid.write_text(
        f'[base]\nmodel = "{tiny_model}"\nmethod = "vanilla"\nn_train = 48\nn_dev = 16\nepochs = 1\n'
        f"batch_size = 8\ndata_seed = 0\n\n[[grid]]\nseed = {seeds}\n"
    )
    results, log, cache = tmp_path / "results.jsonl", tmp_path / "grid.log", tmp_path / "cache"
    command = [sys.executable, "-c", INTERRUPTIBLE_CLI, "grid", str(grid), "--results", str(results)]
    command += ["--data-dir", str(glue), "--cache-dir", str(cache), "--no-progress"]
    with open(log, "wb") as out:  # a file: a pipe nobody reads could fill up and stall the child
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
        )
        try:
            deadline = time.monotonic() + 300
            while not results.exists():
                if process.poll() is not None:
                    pytest.fail(f"the grid ended with {process.returncode} before its first record:\n{log.read_text()}")
                if time.monotonic() > deadline:
                    pytest.fail(f"no run recorded after 300 s:\n{log.read_text()}")
                time.sleep(0.05)
            # Ctrl-C while the child waits after its first record. Should one still be lost (a SIGINT that
            # lands in a __del__ is printed as "Exception ignored" and dropped), send it again until the
            # grid says it stopped; once it has, another would break its way out.
            for _ in range(10):
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=3)
                    break
                except subprocess.TimeoutExpired:
                    if "interrupted:" in log.read_text():
                        process.wait(timeout=60)
                        break
            else:
                pytest.fail(f"the grid was still running after ten SIGINTs:\n{log.read_text()}")
        finally:
            if process.poll() is None:  # never left running, whatever failed above
                process.kill()
                process.wait()
    output = log.read_text()
    assert process.returncode == 130, output
    assert "run the same command again to resume" in output
    finished = len(load_results(results))
    assert finished == 1, output
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]  # no half-written file left

    lines = []
    configs = read_grid(grid)
    ran = run_grid(configs, results, data_dir=str(glue), cache_dir=cache, progress=False, log=lines.append)
    assert ran == len(seeds) - finished
    assert sum("already in" in line for line in lines) == finished
    records = load_results(results)
    assert sorted(r["seed"] for r in records) == seeds
    assert sorted(r["run_id"] for r in records) == sorted(run_id(cfg) for cfg in configs)


class ExplodingObjective:
    needs_train_logits = False

    def loss(self, logits, batch, epoch):
        loss = logits.sum() * 0
        return loss + float("nan") if self.steps_seen == 2 else self.count(loss)

    def count(self, loss):
        self.steps_seen += 1
        return loss

    def end_epoch(self, *args):
        return None

    steps_seen = 0


def test_a_nan_loss_stops_the_run_and_names_the_step(tiny):
    task = get_task("rte")
    tokenizer = load_tokenizer(tiny.model)
    data = prepare_data(tiny, task, tokenizer)
    model = load_model(tiny.model, task)
    objective: Objective = ExplodingObjective()
    with pytest.raises(NonFiniteLossError, match="the loss became nan at epoch 1, step 3"):
        fit(
            model,
            data["train"],
            {"validation": data["validation"]},
            task,
            objective,
            TrainConfig(epochs=1, batch_size=8, progress=False),
        )
