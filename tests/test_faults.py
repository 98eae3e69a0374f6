"""Faults and bad input: each case, and the clear error or the recovery it gets.

| case | outcome | test |
|---|---|---|
| SIGKILL during epoch 3, then --resume | same dev metrics, weights and model as an uninterrupted run | test_checkpoint.py |
| truncated or foreign checkpoint | refused, naming the file and the mismatch; nothing overwritten | test_checkpoint.py |
| SIGINT in the middle of a grid, then rerun | exit 130; the rerun skips finished runs; every run once | here |
| read-only or full results folder, or a file where the folder should be | error before any training | here |
| a truncated line in a results file | skipped with a warning naming the line; the rest kept | here |
| TSV: wrong column count, unknown label, empty file, non-UTF-8 byte | one line naming file, line, column, value | here (and test_data.py) |
| model folder without a weights file | one line naming the folder and the files expected | here |
| grid file: a value of the wrong type or out of range | one line naming the file, the table and the setting | here |
| NaN in the loss | the run stops, naming the epoch and step | here |
"""

import errno
import functools
import os
import signal
import subprocess
import sys
import time

import pytest

from dcs_lib import DCSError, NonFiniteLossError, get_task
from dcs_lib.experiments import append_record, check_writable, load_results
from dcs_lib.methods import prepare_data
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
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(DCSError, match="cannot write results to .*results.jsonl: No space left on device"):
        check_writable(tmp_path / "results.jsonl")
    assert not list(tmp_path.iterdir())  # the probe file is gone too


def test_a_grid_killed_midway_resumes_with_every_run_once(tmp_path, tiny_model, glue):
    grid = tmp_path / "grid.toml"
    grid.write_text(
        f'[base]\nmodel = "{tiny_model}"\nn_train = 240\nn_dev = 16\nepochs = 2\nteacher_epochs = 1\n'
        f'batch_size = 8\n\n[[grid]]\nmethod = ["vanilla", "dcs"]\nseed = [1, 2, 3]\n'
    )
    results = tmp_path / "results.jsonl"
    command = [
        sys.executable,
        "-m",
        "dcs_lib",
        "grid",
        str(grid),
        "--results",
        str(results),
        "--data-dir",
        str(glue),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--no-progress",
    ]
    # Ctrl-C's default action, even where this test runs in a background job (which starts with SIGINT
    # ignored, and Python then installs no KeyboardInterrupt handler)
    default_sigint = functools.partial(signal.signal, signal.SIGINT, signal.SIG_DFL)
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=default_sigint
    )
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
        (m, s) for m in ("vanilla", "dcs") for s in (1, 2, 3)
    )
    assert len({r["run_id"] for r in records}) == 6


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
