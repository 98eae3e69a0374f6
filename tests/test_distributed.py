"""The same loop under DDP: two CPU processes on the gloo backend."""

import json
import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp

from dcs_lib import distributed, get_task
from dcs_lib.methods import RunConfig, Weighted, prepare_data, teacher_logits
from dcs_lib.models import load_model, load_tokenizer
from dcs_lib.train import fit, seed_everything

from .conftest import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_on_rank(rank: int, world_size: int, port: int, cfg: RunConfig, out: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size),
        OMP_NUM_THREADS="1",
    )
    torch.set_num_threads(1)
    distributed.setup()
    task = get_task(cfg.task)
    tokenizer = load_tokenizer(cfg.model)
    data = prepare_data(cfg, task, tokenizer)
    teacher, _ = teacher_logits(cfg, task, data, tokenizer, cache_dir=None)
    seed_everything(cfg.seed)
    objective = Weighted(task, cfg, torch.tensor(data["train"]["label"]), teacher, torch.device("cpu"))
    history = fit(
        load_model(cfg.model, task),
        data["train"],
        {"validation": data["validation"]},
        task,
        objective,
        cfg.train_config(progress=False),
        tokenizer.pad_token_id,
    )
    torch.save(
        {
            "weights": objective.weights,
            "teacher": teacher,
            "dev": [e["dev"] for e in history],
            "stats": [e.get("weights") for e in history],
        },
        f"{out}/rank{rank}.pt",
    )
    torch.distributed.destroy_process_group()


@pytest.mark.parametrize("source", ["eval", "train"])
def test_every_rank_computes_the_same_dcs_weights(tiny_model, glue, tmp_path, source):
    cfg = RunConfig(
        task="rte",
        method="dcs",
        model=tiny_model,
        data_dir=str(glue),
        n_train=200,
        n_dev=64,
        epochs=2,
        teacher_epochs=4,
        batch_size=8,
        lr=3e-3,
        seed=2,
        lam=2.0,
        disagreement_source=source,
    )
    mp.spawn(train_on_rank, args=(2, free_port(), cfg, str(tmp_path)), nprocs=2, join=True)
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert torch.equal(rank0["teacher"], rank1["teacher"])
    assert torch.equal(rank0["weights"], rank1["weights"])
    assert not torch.equal(rank0["weights"], torch.ones(200)), rank0["stats"]  # the update really happened
    assert rank0["dev"] == rank1["dev"]


def test_torchrun_matches_a_single_process_within_noise(glue, tmp_path):
    common = [
        "train",
        "--task",
        "rte",
        "--method",
        "dcs",
        "--data-dir",
        str(glue),
        "--n-train",
        "256",
        "--n-dev",
        "128",
        "--epochs",
        "2",
        "--teacher-epochs",
        "1",
        "--batch-size",
        "16",
        "--seed",
        "3",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--no-progress",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ddp = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node=2",
            f"--master_port={free_port()}",
            "-m",
            "dcs_lib",
            *common,
            "--results",
            str(tmp_path / "ddp.jsonl"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    single = subprocess.run(
        [
            sys.executable,
            "-m",
            "dcs_lib",
            *common,
            "--results",
            str(tmp_path / "single.jsonl"),
            "--cache-dir",
            str(tmp_path / "cache-single"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert single.returncode == 0, single.stderr[-3000:]
    lines = (tmp_path / "ddp.jsonl").read_text().splitlines()
    assert len(lines) == 1  # rank 0 alone writes
    ddp_record, single_record = json.loads(lines[0]), json.loads((tmp_path / "single.jsonl").read_text())
    assert ddp_record["world_size"] == 2 and "x2 (DDP)" in ddp_record["device"]
    # 128 dev examples: one standard error of an accuracy near 0.5 is about 0.044
    assert abs(ddp_record["final"]["accuracy"] - single_record["final"]["accuracy"]) <= 0.12
