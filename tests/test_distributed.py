"""The same loop under DDP: two CPU processes on the gloo backend."""

import json
import os
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from dcs_lib import distributed, get_task, weighting
from dcs_lib.methods import RunConfig, Weighted, prepare_data, teacher_logits
from dcs_lib.models import load_model, load_tokenizer
from dcs_lib.train import fit, seed_everything

from .conftest import ROOT


class OnCuda(torch.Tensor):
    """A CPU tensor standing for one moved to the GPU, so that no GPU is needed; its clones stay marked."""


@pytest.mark.parametrize("backend", ["gloo", "nccl"])
def test_collectives_put_tensors_where_the_backend_needs_them(monkeypatch, backend):
    """NCCL reduces CUDA tensors only, and the DCS weights live on the CPU: under NCCL, sum_ and
    check_identical hand all_reduce a copy on the current GPU (sum_ copies the sum back); under gloo
    the CPU tensor itself."""
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_backend", lambda group=None: backend)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    targets = []
    real_to = torch.Tensor.to

    def to(self, *args, **kwargs):
        target = kwargs.get("device", args[0] if args else None)
        if isinstance(target, (str, torch.device)) and torch.device(target).type == "cuda":
            targets.append(torch.device(target))
            return self.clone().as_subclass(OnCuda)
        return real_to(self, *args, **kwargs)

    received = []

    def all_reduce(tensor, op=dist.ReduceOp.SUM, group=None, async_op=False):
        received.append("cuda" if isinstance(tensor, OnCuda) else tensor.device.type)
        if backend == "nccl" and not isinstance(tensor, OnCuda):
            raise RuntimeError("No backend type associated with device type cpu")  # what NCCL says
        if op == dist.ReduceOp.SUM:
            tensor.mul_(2)  # two ranks holding the same values

    monkeypatch.setattr(torch.Tensor, "to", to)
    monkeypatch.setattr(dist, "all_reduce", all_reduce)

    values = torch.tensor([1.0, 2.0])
    assert distributed.sum_(values) is values and values.tolist() == [2.0, 4.0]  # in place, on the CPU
    assert type(values) is torch.Tensor and values.device.type == "cpu"
    distributed.check_identical(torch.ones(3), "DCS sample weights")
    want = "cuda" if backend == "nccl" else "cpu"
    assert received == [want] * 3  # one sum, then the lowest and highest checksum
    assert targets == ([torch.device("cuda", 1)] * 2 if backend == "nccl" else [])  # the current device


def as_two_ranks(monkeypatch, theirs: torch.Tensor) -> None:
    """Fake a world of two: this process, and a rank holding ``theirs``, whose checksum the fake collective
    takes from check_identical itself, so the test does not restate how the checksum is made."""
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_backend", lambda group=None: "gloo")
    sent = []
    monkeypatch.setattr(dist, "all_reduce", lambda tensor, **kwargs: sent.append(tensor.clone()))
    distributed.check_identical(theirs, "recording")
    other = sent[0]

    def all_reduce(tensor, op=dist.ReduceOp.SUM, group=None, async_op=False):
        combine = {dist.ReduceOp.MIN: torch.minimum, dist.ReduceOp.MAX: torch.maximum}[op]
        tensor.copy_(combine(tensor, other))

    monkeypatch.setattr(dist, "all_reduce", all_reduce)


def test_check_identical_raises_naming_what_differs_between_ranks(monkeypatch):
    weights = torch.tensor([0.5, 1.0, 1.5, 1.0])
    as_two_ranks(monkeypatch, weights.clone())
    distributed.check_identical(weights, "DCS sample weights")  # the same on both: silent
    as_two_ranks(monkeypatch, weights + torch.tensor([0.0, 0.0, 0.0, 1e-3]))
    with pytest.raises(RuntimeError, match="^DCS sample weights differ between ranks$"):
        distributed.check_identical(weights, "DCS sample weights")
    as_two_ranks(monkeypatch, weights - 0.25)  # the other rank the lower, as well as the higher
    with pytest.raises(RuntimeError, match="^teacher logits differ between ranks$"):
        distributed.check_identical(weights, "teacher logits")


@pytest.mark.parametrize("theirs", [(4, 5), (1, 2)])  # a position-weighted sum would miss the second
def test_check_identical_tells_which_examples_carry_the_weight(monkeypatch, theirs):
    """Two ranks that agree on how many examples were discordant, not on which: same sum, same squares."""
    ones = torch.ones(6)
    mine = weighting.update_weights(ones, torch.tensor([i in (0, 3) for i in range(6)]))
    other = weighting.update_weights(ones, torch.tensor([i in theirs for i in range(6)]))
    assert mine.sum() == pytest.approx(other.sum()) and not torch.equal(mine, other)
    as_two_ranks(monkeypatch, other)
    with pytest.raises(RuntimeError, match="differ between ranks"):
        distributed.check_identical(mine, "DCS sample weights")


def test_check_identical_calls_no_collective_in_one_process(monkeypatch):
    calls = []
    monkeypatch.setattr(dist, "all_reduce", lambda *args, **kwargs: calls.append(args))
    distributed.check_identical(torch.tensor([1.0, 2.0]), "anything")
    assert calls == []  # no process group: a collective would fail


def train_on_rank(rank: int, world_size: int, cfg: RunConfig, out: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size), OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    # The ranks meet in a file rather than on a TCP port: a port found free and handed over can be
    # taken by another process before rank 0 binds it. setup() then finds the group already joined.
    dist.init_process_group("gloo", init_method=f"file://{out}/rendezvous", rank=rank, world_size=world_size)
    assert distributed.setup() == distributed.World(rank, world_size, rank)
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
    mp.spawn(train_on_rank, args=(2, cfg, str(tmp_path)), nprocs=2, join=True)
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
            "--standalone",  # torchrun binds a port of the OS's choosing itself: no port to race for
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
