"""The command line: help, a real run, and one clear line for every kind of bad input."""

import json
import os
import subprocess
import sys

import pytest

from .conftest import ROOT


def dcs(*args, timeout=600, env=None):
    return subprocess.run(
        [sys.executable, "-m", "dcs_lib", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_help_documents_every_option():
    out = dcs("train", "--help").stdout
    for flag in (
        "--task",
        "--method",
        "--model",
        "--data-dir",
        "--n-train",
        "--epochs",
        "--teacher-epochs",
        "--lam",
        "--alpha",
        "--temperature",
        "--seed",
        "--batch-size",
        "--lr",
        "--results",
        "--disagreement-source",
        "--step",
        "--no-accumulate",
        "--amp",
    ):
        assert flag in out
    assert all(word in dcs("--help").stdout for word in ("demo", "train", "grid", "report"))


def test_train_appends_one_record(tmp_path, tiny_model, glue):
    results = tmp_path / "out" / "results.jsonl"
    for _ in range(2):
        done = dcs(
            "train",
            "--task",
            "Rte",
            "--method",
            "dcs",
            "--model",
            tiny_model,
            "--data-dir",
            glue,
            "--n-train",
            24,
            "--n-dev",
            16,
            "--epochs",
            2,
            "--teacher-epochs",
            1,
            "--lam",
            2,
            "-T",
            3,
            "--results",
            results,
            "--cache-dir",
            tmp_path / "cache",
            "--no-progress",
        )
        assert done.returncode == 0, done.stderr
    lines = results.read_text().splitlines()
    record = json.loads(lines[-1])
    assert len(lines) == 2 and record["config"]["lam"] == 2.0 and record["config"]["temperature"] == 3.0
    assert {"task", "method", "seed", "config", "epochs", "best", "final", "wall_s", "device", "versions"} <= set(
        record
    )
    assert "weights" in record["epochs"][0] and "accuracy" in record["epochs"][0]["dev"]
    assert "rte dcs seed 42" in done.stdout

    report = dcs("report", results, "--out", tmp_path / "report")
    assert report.returncode == 0, report.stderr
    assert (tmp_path / "report" / "summary-1.png").is_file() and "| rte | accuracy |" in report.stdout


def bad(*args, env=None):
    done = dcs(*args, timeout=120, env=env)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and done.stderr.startswith("error: ")
    return done.stderr


def test_unknown_task():
    assert "valid tasks: cola, sst2, mrpc, qqp, stsb, mnli, qnli, rte, wnli" in bad("train", "--task", "imdb")


def test_no_local_data_and_no_hub_says_how_to_supply_it():
    env = {k: v for k, v in os.environ.items() if k != "DCS_GLUE_DIR"}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    message = bad("train", "--task", "rte", env=env)
    assert "could not load rte from the Hugging Face hub" in message
    assert "--data-dir DIR or DCS_GLUE_DIR=DIR; expected the glue_data layout: DIR/RTE/train.tsv" in message


def test_missing_data_dir(tmp_path):
    message = bad("train", "--data-dir", tmp_path / "nope")
    assert "nope does not exist" in message and "RTE/train.tsv" in message


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--lam", "-1", "lambda must be >= 0"),
        ("--alpha", "1.2", "alpha must be in [0, 1]"),
        ("--temperature", "0", "temperature T must be > 0"),
        ("--warmup-ratio", "2", "warm-up ratio must be in [0, 1]"),
        ("--plain-epochs", "3", "dcs with 3 plain epoch(s) first trains on updated weights in epoch 4"),
    ],
)
def test_bad_hyper_parameters(option, value, message):
    assert message in bad("train", option, value)


def test_empty_subset(glue):
    assert "would be empty" in bad("train", "--n-train", 0, "--data-dir", glue)


def test_report_of_a_missing_file(tmp_path):
    assert "does not exist" in bad("report", tmp_path / "none.jsonl")


def test_report_needs_results_or_the_study(tmp_path):
    assert "report needs a results file" in bad("report")
    assert "drop the results files" in bad("report", "--study", tmp_path / "runs.jsonl")
    elsewhere = subprocess.run(
        [sys.executable, "-m", "dcs_lib", "report", "--study"], cwd=tmp_path, capture_output=True, text=True
    )
    assert elsewhere.returncode == 2 and "run report --study from the project's root folder" in elsewhere.stderr


def test_grid_only_names_a_run_setting(tmp_path):
    grid = ROOT / "data" / "results" / "glue" / "grid.toml"
    message = bad("grid", grid, "--results", tmp_path / "r.jsonl", "--only", "colour=red")
    assert "cannot select runs by 'colour': not a run setting" in message
    done = dcs("grid", grid, "--results", tmp_path / "r.jsonl", "--only", "task")
    assert done.returncode == 2 and "expected KEY=VALUE[,VALUE...]" in done.stderr


def test_report_pairs_vanilla_with_every_teacher(tmp_path):
    """A study's records: vanilla, and DCS with a 2-epoch own-seed teacher and a 5-epoch peer."""
    from .test_report import record

    peer = {"teacher_seed": 9, "teacher_epochs": 5}
    runs = [
        r
        for s in (1, 2, 3)
        for r in (record("vanilla", s, 0.80), record("dcs", s, 0.81 + 0.001 * s), record("dcs", s, 0.82, teacher=peer))
    ]
    results = tmp_path / "runs.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in runs))
    report = dcs("report", results, "--out", tmp_path / "report")
    assert report.returncode == 0, report.stderr
    rows = [line for line in report.stdout.splitlines() if "| dcs - vanilla |" in line]
    assert any("own seed (2 ep)" in line for line in rows) and any("peer (5 ep)" in line for line in rows), rows
