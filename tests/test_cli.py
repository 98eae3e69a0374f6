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


def test_report_of_mixed_devices_reports_each_block_apart(tmp_path, capsys):
    """CPU float32 and GPU bfloat16 runs of the same seeds in one file: two blocks, never one pool."""
    from dcs_lib.cli import main

    from .test_report import CPU_BLOCK, GPU_BLOCK, two_block_records

    results = tmp_path / "runs.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in two_block_records()))
    assert main(["report", str(results), "--out", str(tmp_path / "report")]) == 0
    out = capsys.readouterr().out
    assert f"## Block 1: device, precision, torch: {CPU_BLOCK}" in out
    assert f"## Block 2: device, precision, torch: {GPU_BLOCK}" in out
    assert "Paired differences skipped" not in out
    cpu, gpu = out.split("## Block 2")
    assert "| dcs - vanilla | own seed (2 ep) | 3 | 2.0 |" in cpu and "| 3 | -4.0 |" not in cpu
    assert "| dcs - vanilla | own seed (2 ep) | 3 | -4.0 |" in gpu and "| 3 | 2.0 |" not in gpu
    assert "summary-1.png, when-1.png, summary-2.png, when-2.png" in out.splitlines()[-1]


def grid_of_two(tmp_path):
    """A grid of two vanilla runs (seeds 1 and 2, so two teacher groups) and their configurations."""
    from dcs_lib.experiments import read_grid

    grid = tmp_path / "grid.toml"
    grid.write_text('[base]\ntask = "rte"\nepochs = 1\n\n[[grid]]\nmethod = ["vanilla"]\nseed = [1, 2]\n')
    return grid, read_grid(grid)


def no_training(monkeypatch):
    """Stand in for data, tokenizer and training in run_grid; the seeds it was asked to train, in order."""
    import dcs_lib.experiments as experiments

    trained = []

    def fake_run(cfg, **kwargs):
        trained.append(cfg.seed)
        score = {"accuracy": 0.5, "epoch": 1}
        return {"task": cfg.task, "method": cfg.method, "seed": cfg.seed, "epochs": [], "metric": "accuracy",
                "best": score, "final": score, "wall_s": 0.0}  # fmt: skip

    monkeypatch.setattr(experiments, "run", fake_run)
    monkeypatch.setattr(experiments, "load_tokenizer", lambda model: None)
    monkeypatch.setattr(experiments, "prepare_data", lambda cfg, task, tokenizer: {})
    return trained


def done_record(cfg) -> dict:
    from dcs_lib.methods import run_id

    return {"task": cfg.task, "method": cfg.method, "seed": cfg.seed, "epochs": [], "run_id": run_id(cfg)}


def test_grid_skips_runs_already_in_the_files_of_skip_runs_in(tmp_path, monkeypatch, capsys):
    from dcs_lib.cli import main
    from dcs_lib.experiments import load_results
    from dcs_lib.methods import run_id

    grid, configs = grid_of_two(tmp_path)
    other, results = tmp_path / "other-shard.jsonl", tmp_path / "mine.jsonl"
    other.write_text(json.dumps(done_record(configs[0])) + "\n")
    trained = no_training(monkeypatch)
    assert main(["grid", str(grid), "--results", str(results), "--skip-runs-in", str(other)]) == 0
    out = capsys.readouterr().out
    assert trained == [2]
    assert f"[1/2] rte vanilla seed=1: already in {other}, {results}, skipped" in out
    assert "grid done: 1 run(s) added, 2 in the grid" in out
    assert [r["run_id"] for r in load_results(results)] == [run_id(configs[1])]  # the other file's run not copied
    assert len(other.read_text().splitlines()) == 1


def test_grid_without_skip_runs_in_runs_what_only_another_file_holds(tmp_path, monkeypatch, capsys):
    from dcs_lib.cli import main

    grid, configs = grid_of_two(tmp_path)
    (tmp_path / "other-shard.jsonl").write_text(json.dumps(done_record(configs[0])) + "\n")
    trained = no_training(monkeypatch)
    assert main(["grid", str(grid), "--results", str(tmp_path / "mine.jsonl")]) == 0
    assert trained == [1, 2] and "grid done: 2 run(s) added" in capsys.readouterr().out


def test_grid_shard_runs_its_share_only(tmp_path, monkeypatch, capsys):
    """Shard numbers are 1-based on the command line: 1/2 and 2/2 split the grid between them, once each."""
    from dcs_lib.cli import main

    grid, _ = grid_of_two(tmp_path)
    trained = no_training(monkeypatch)
    lines = []
    for shard in ("1/2", "2/2"):
        assert main(["grid", str(grid), "--results", str(tmp_path / f"{shard[0]}.jsonl"), "--shard", shard]) == 0
        lines.append(capsys.readouterr().out.splitlines())
    assert sorted(trained) == [1, 2] and len(set(trained)) == 2
    assert lines[0][-1] == f"grid done (shard 1/2): 1 run(s) added, 2 in the grid; results in {tmp_path / '1.jsonl'}"
    assert lines[1][-1].startswith("grid done (shard 2/2): 1 run(s) added, 2 in the grid")
    assert all(line.startswith("[1/1] rte vanilla seed=") for line in lines[0][:-1] + lines[1][:-1])


@pytest.mark.parametrize(
    "value, message",
    [
        ("0/2", "shard 0/2: I must be between 1 and N"),
        ("3/2", "shard 3/2: I must be between 1 and N"),
        ("2/0", "shard 2/0: I must be between 1 and N"),
        ("x", "expected I/N, like 2/4, got 'x'"),
        ("1/2/3", "expected I/N, like 2/4, got '1/2/3'"),
        ("1.5/2", "expected I/N, like 2/4, got '1.5/2'"),
    ],
)
def test_grid_shard_must_be_i_of_n(tmp_path, capsys, value, message):
    from dcs_lib.cli import main

    grid, _ = grid_of_two(tmp_path)
    with pytest.raises(SystemExit) as exited:  # argparse's own exit, with its usage line
        main(["grid", str(grid), "--results", str(tmp_path / "r.jsonl"), "--shard", value])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --shard: {message}" in err and "Traceback" not in err
    assert not (tmp_path / "r.jsonl").exists()


def test_resume_without_a_checkpoint_dir_is_refused_before_anything_runs(tmp_path, monkeypatch, capsys):
    import dcs_lib.methods as methods
    from dcs_lib.cli import main

    def no_run(*args, **kwargs):
        raise AssertionError("train ran without a checkpoint folder to resume from")

    monkeypatch.setattr(methods, "run", no_run)
    results = tmp_path / "out" / "r.jsonl"
    assert main(["train", "--task", "rte", "--resume", "--results", str(results)]) == 2
    captured = capsys.readouterr()
    assert captured.err == "error: --resume needs --checkpoint-dir\n" and captured.out == ""
    assert not (tmp_path / "out").exists()  # refused before the results folder was made
