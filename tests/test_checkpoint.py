"""Checkpoints: a run killed with SIGKILL during epoch 3 resumes to exactly the same result."""

import json
import re
import signal
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from .conftest import ROOT


def train_command(tiny_model, glue, tmp_path, name, *extra):
    return [
        sys.executable,
        "-m",
        "dcs_lib",
        "train",
        "--task",
        "rte",
        "--method",
        "dcs",
        "--model",
        tiny_model,
        "--data-dir",
        str(glue),
        "--n-train",
        "480",
        "--n-dev",
        "32",
        "--epochs",
        "4",
        "--teacher-epochs",
        "1",
        "--batch-size",
        "8",
        "--lr",
        "1e-3",
        "--seed",
        "7",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--results",
        str(tmp_path / f"{name}.jsonl"),
        "--checkpoint-dir",
        str(tmp_path / name),
        "--no-progress",
        *extra,
    ]


# The command line, SIGKILLed by itself at a fixed point: three training steps into epoch 3, after the
# checkpoint of epoch 2. A kill from outside lands wherever the machine's load has got the run to.
KILLED_IN_EPOCH_THREE = """
import os, signal, sys
from dcs_lib import checkpoint, train
from dcs_lib.cli import main

save, forward, steps = checkpoint.Checkpointer.save, train.forward, []

def save_and_count(self, epoch, *args, **kwargs):
    path = save(self, epoch, *args, **kwargs)
    if epoch == 2:
        steps.append(0)
    return path

def forward_then_die(model, batch):
    if steps:  # only training runs forward passes between epoch 2's checkpoint and epoch 3's evaluation
        steps[0] += 1
        if steps[0] > 3:
            os.kill(os.getpid(), signal.SIGKILL)
    return forward(model, batch)

checkpoint.Checkpointer.save, train.forward = save_and_count, forward_then_die
sys.exit(main(sys.argv[1:]))
"""


def killed_in_epoch_three(command: list[str], tmp_path) -> None:
    """Run ``command`` (``python -m dcs_lib ...``) until it kills itself during epoch 3."""
    log = tmp_path / "killed.log"
    with open(log, "wb") as out:
        done = subprocess.run(
            [sys.executable, "-c", KILLED_IN_EPOCH_THREE, *command[3:]],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=600,
        )
    assert done.returncode == -signal.SIGKILL, f"exit {done.returncode}, not killed in epoch 3:\n{log.read_text()}"


def final_state(tmp_path, name):
    record = json.loads((tmp_path / f"{name}.jsonl").read_text().splitlines()[-1])
    last = tmp_path / name / "epoch-004"
    return record, load_file(last / "tensors.safetensors"), load_file(last / "model.safetensors")


def test_sigkill_during_epoch_three_then_resume_matches_an_uninterrupted_run(tiny_model, glue, tmp_path):
    whole = subprocess.run(
        train_command(tiny_model, glue, tmp_path, "whole"), cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert whole.returncode == 0, whole.stderr

    killed_in_epoch_three(train_command(tiny_model, glue, tmp_path, "killed"), tmp_path)  # no handler runs
    assert [p.name for p in (tmp_path / "killed").iterdir()] == ["epoch-002"]
    assert not (tmp_path / "killed.jsonl").exists()

    resumed = subprocess.run(
        train_command(tiny_model, glue, tmp_path, "killed", "--resume"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr
    a, a_tensors, a_model = final_state(tmp_path, "whole")
    b, b_tensors, b_model = final_state(tmp_path, "killed")
    assert [e["dev"] for e in a["epochs"]] == [e["dev"] for e in b["epochs"]]
    assert [e["train_loss"] for e in a["epochs"]] == [e["train_loss"] for e in b["epochs"]]
    assert torch.equal(a_tensors["weights"], b_tensors["weights"])
    assert all(torch.equal(a_model[k], b_model[k]) for k in a_model)


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "dcs_lib", *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


@pytest.fixture
def checkpointed(tiny_model, glue, tmp_path):
    command = train_command(tiny_model, glue, tmp_path, "run")
    command[command.index("--epochs") + 1] = "1"
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return command, tmp_path / "run" / "epoch-001"


def test_a_truncated_checkpoint_is_refused_and_kept(checkpointed):
    command, folder = checkpointed
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    done = subprocess.run([*command, "--resume"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"checkpoint {folder} is corrupt" in done.stderr
    assert len(weights.read_bytes()) == 1000  # nothing overwritten


def test_a_checkpoint_of_another_run_is_refused(checkpointed):
    command, folder = checkpointed
    command[command.index("--task") + 1] = "mrpc"
    done = subprocess.run([*command, "--resume"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 2 and "belongs to another run: its run_id is" in done.stderr


def test_state_files_load_without_unpickling_objects(checkpointed):
    _, folder = checkpointed
    state = torch.load(folder / "state.pt", weights_only=True)
    assert {"optimizer", "scheduler", "scaler", "rng"} <= state.keys()


def test_a_new_run_never_overwrites_an_existing_checkpoint(checkpointed):
    command, folder = checkpointed
    before = (folder / "model.safetensors").read_bytes()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 2 and "already holds a checkpoint (epoch-001); add --resume" in done.stderr
    assert (folder / "model.safetensors").read_bytes() == before


def test_a_grid_run_killed_midway_resumes_after_its_last_epoch(tiny_model, glue, tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text(
        f'[base]\nmodel = "{tiny_model}"\nn_train = 480\nn_dev = 32\nepochs = 4\nteacher_epochs = 1\n'
        f'batch_size = 8\nlr = 1e-3\n\n[[grid]]\nmethod = ["dcs"]\nseed = [7]\n'
    )

    def command(name):
        return [
            *(sys.executable, "-m", "dcs_lib", "grid", str(grid), "--results", str(tmp_path / f"{name}.jsonl")),
            *("--data-dir", str(glue), "--cache-dir", str(tmp_path / "cache")),
            *("--checkpoint-dir", str(tmp_path / name), "--no-progress"),
        ]

    whole = subprocess.run(command("whole"), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert whole.returncode == 0, whole.stderr
    assert not list((tmp_path / "whole").iterdir())  # a recorded run leaves no checkpoint behind

    killed_in_epoch_three(command("killed"), tmp_path)
    assert [p.name for p in (tmp_path / "killed").glob("*/*")] == ["epoch-002"]
    assert not (tmp_path / "killed.jsonl").exists()

    resumed = subprocess.run(command("killed"), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stdout and "epoch-002" in resumed.stdout
    a = json.loads((tmp_path / "whole.jsonl").read_text())
    b = json.loads((tmp_path / "killed.jsonl").read_text())
    assert "resumed_after_epoch" not in a and b["resumed_after_epoch"] == 2
    assert a["run_id"] == b["run_id"]
    assert [e["dev"] for e in a["epochs"]] == [e["dev"] for e in b["epochs"]]
    assert [e["weights"] for e in a["epochs"][1:]] == [e["weights"] for e in b["epochs"][1:]]
    assert not list((tmp_path / "killed").iterdir())


def saved_checkpoint(folder, width=2):
    """A one-layer model trained one step and checkpointed as epoch 1; returns the checkpointer and its objects."""
    from dcs_lib.checkpoint import Checkpointer

    torch.manual_seed(0)
    model = torch.nn.Linear(4, width)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    model(torch.randn(3, 4)).sum().backward()
    optimizer.step()
    scheduler.step()
    checkpointer = Checkpointer(folder, {"run_id": "abc", "task": "rte"})
    checkpointer.save(1, model, optimizer, scheduler, scaler, {"weights": torch.rand(6)}, [{"epoch": 1}])
    return checkpointer, (model, optimizer, scheduler, scaler)


def contents(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def fresh_objects(width=2):
    """A new run's model, optimiser, scheduler and scaler, about to be resumed into."""
    torch.manual_seed(1)
    model = torch.nn.Linear(4, width)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1)
    return model, optimizer, scheduler, torch.amp.GradScaler("cpu", enabled=False)


def test_a_checkpoint_roundtrips_into_fresh_objects(tmp_path):
    """The base case the refusals below depart from: the same files load."""
    checkpointer, (model, optimizer, scheduler, _) = saved_checkpoint(tmp_path / "run")
    objects = fresh_objects()
    epoch, history, tensors = checkpointer.load(*objects)
    assert epoch == 1 and history == [{"epoch": 1}] and set(tensors) == {"weights"}
    assert torch.equal(objects[0].weight, model.weight)
    momentum = [o.state_dict()["state"][0]["momentum_buffer"] for o in (objects[1], optimizer)]
    assert torch.equal(*momentum)
    assert objects[2].last_epoch == scheduler.last_epoch == 1


@pytest.mark.parametrize("missing", ["model.safetensors", "tensors.safetensors", "state.pt", "meta.json"])
def test_an_incomplete_checkpoint_is_refused_naming_the_missing_file(tmp_path, missing):
    from dcs_lib import DCSError

    checkpointer, _ = saved_checkpoint(tmp_path / "run")
    folder = tmp_path / "run" / "epoch-001"
    (folder / missing).unlink()
    before = contents(tmp_path / "run")
    model, *rest = fresh_objects()
    weight = model.weight.detach().clone()
    with pytest.raises(DCSError, match=f"^checkpoint {re.escape(str(folder))} is incomplete: {missing} is missing$"):
        checkpointer.load(model, *rest)
    assert contents(tmp_path / "run") == before  # nothing written, nothing removed
    assert torch.equal(model.weight, weight)  # nor anything loaded


def test_a_checkpoint_with_corrupt_meta_json_is_refused_naming_it(tmp_path):
    from dcs_lib import DCSError

    checkpointer, _ = saved_checkpoint(tmp_path / "run")
    meta = tmp_path / "run" / "epoch-001" / "meta.json"
    meta.write_text('{"identity": {"run_id": "abc"')  # cut short, as by a full disk
    before = contents(tmp_path / "run")
    model, *rest = fresh_objects()
    weight = model.weight.detach().clone()
    with pytest.raises(DCSError, match=f"^checkpoint {re.escape(str(meta))} is corrupt: Expecting"):
        checkpointer.load(model, *rest)
    assert contents(tmp_path / "run") == before
    assert torch.equal(model.weight, weight)


@pytest.mark.parametrize("other", ["wider head", "another architecture"])
def test_a_checkpoint_of_another_shape_is_refused_as_not_fitting(tmp_path, other):
    from dcs_lib import DCSError

    checkpointer, _ = saved_checkpoint(tmp_path / "run")
    before = contents(tmp_path / "run")
    model, optimizer, scheduler, scaler = fresh_objects(width=3)
    if other == "another architecture":  # two layers, named 0.* and 1.*: not one key in common
        model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1)
    problem = "size mismatch for weight" if other == "wider head" else 'Missing key.*"0.weight"'
    weights = tmp_path / "run" / "epoch-001" / "model.safetensors"
    pattern = rf"(?s)^checkpoint {re.escape(str(weights))} does not fit this model: .*{problem}"
    rng = torch.get_rng_state()
    with pytest.raises(DCSError, match=pattern) as refused:
        checkpointer.load(model, optimizer, scheduler, scaler)
    assert "\n" not in str(refused.value)  # one line, as every error the CLI prints
    assert contents(tmp_path / "run") == before
    # refused before the optimiser, scheduler and random generators were restored
    assert optimizer.state_dict()["state"] == {} and scheduler.last_epoch == 0
    assert torch.equal(torch.get_rng_state(), rng)
