"""dcs_lib.hf.DCSTrainer: the Hugging Face Trainer with DCS computes what dcs_lib computes.

On a tiny run: the weights after every update equal dcs_lib.weighting.update_weights applied to
the same student predictions (mapped to rows, the training set shuffled so that row and position
differ), the loss of a batch equals dcs_lib.losses.dcs_loss on it; and the README's example runs
as printed on a few dozen SST-2 examples.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import torch

from transformers import AutoTokenizer, TrainerCallback, TrainingArguments

import dcs_lib.data
from dcs_lib import losses, weighting
from dcs_lib.data import load_task, subsample, tokenize
from dcs_lib.errors import DCSError
from dcs_lib.hf import DCSTrainer
from dcs_lib.models import load_model
from dcs_lib.tasks import get_task

from .conftest import ROOT

pytest.importorskip("accelerate", reason="the hf extra is not installed: pip install -e '.[hf]'")


@pytest.fixture(scope="module")
def sst2(glue, tiny_model):
    task = get_task("sst2")
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    raw = load_task(task, glue)
    train = tokenize(subsample(raw["train"], 40, seed=3), tokenizer, task, max_length=32)
    dev = tokenize(subsample(raw["validation"], 16, seed=3), tokenizer, task, max_length=32)
    return task, tokenizer, train.shuffle(seed=0), dev  # shuffled: position != row


def make_trainer(tmp_path, tiny_model, sst2, teacher, epochs=3, args_options=None, **options):
    task, tokenizer, train, dev = sst2
    torch.manual_seed(0)
    args = TrainingArguments(
        str(tmp_path), num_train_epochs=epochs, per_device_train_batch_size=8, learning_rate=1e-3,
        report_to="none", save_strategy="no", logging_strategy="no", disable_tqdm=True, use_cpu=True,
        **(args_options or {}),
    )
    return DCSTrainer(
        load_model(tiny_model, task), args, train_dataset=train, eval_dataset=dev, processing_class=tokenizer,
        teacher_logits=teacher, **options,
    )


def random_teacher(n=40):
    # a teacher that disagrees with the student on about half the examples: the weights move
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(1))


class Snapshots(TrainerCallback):
    """Runs after DCSTrainer's own callback: the weights as each epoch leaves them."""

    def __init__(self, trainer):
        self.trainer, self.weights = trainer, []

    def on_epoch_end(self, args, state, control, **kwargs):
        self.weights.append(self.trainer.sample_weights.clone())


def test_weights_equal_library_update(tmp_path, tiny_model, sst2, monkeypatch):
    teacher = random_teacher()
    trainer = make_trainer(tmp_path, tiny_model, sst2, teacher, lam=1.0, clip_max=1.5)
    predictions = []
    predict = trainer.predict

    def recording_predict(dataset, *args, **kwargs):
        output = predict(dataset, *args, **kwargs)
        predictions.append(torch.as_tensor(output.predictions).clone())
        return output

    monkeypatch.setattr(trainer, "predict", recording_predict)
    snapshots = Snapshots(trainer)
    trainer.add_callback(snapshots)
    trainer.train()

    assert len(predictions) == 2  # after epochs 1 and 2, not after the last
    rows = torch.as_tensor(sst2[2]["row"])
    expected, w = [], torch.ones(40)
    for p in predictions:
        student = torch.empty_like(p)
        student[rows] = p  # prediction i belongs to the example whose row is rows[i]
        w = weighting.update_weights(w, weighting.disagreement(student, teacher), lam=1.0, clip_max=1.5)
        expected.append(w)
    assert len(snapshots.weights) == 3
    for got, want in zip(snapshots.weights, expected + expected[-1:]):  # the last epoch keeps the weights
        assert torch.equal(got, want)
    assert not torch.equal(expected[-1], torch.ones(40))
    assert [h["epoch"] for h in trainer.weight_history] == [1, 2]
    assert trainer.weight_history[-1]["max"] == pytest.approx(1.5)  # the clip is reached


def test_loss_equals_library_loss(tmp_path, tiny_model, sst2):
    teacher = random_teacher()
    trainer = make_trainer(tmp_path, tiny_model, sst2, teacher, alpha=0.3, temperature=3.0)
    trainer.sample_weights = torch.rand(40, generator=torch.Generator().manual_seed(2)) + 0.5
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    model = trainer.model.train()
    assert "row" in batch and "labels" in batch

    trainer.epoch = 1  # the plain epoch: mean cross-entropy
    loss, outputs = trainer.compute_loss(model, batch, return_outputs=True)
    assert torch.equal(loss, losses.cross_entropy(outputs.logits, batch["labels"]).mean())

    trainer.epoch = 2
    loss, outputs = trainer.compute_loss(model, batch, return_outputs=True)
    rows = batch["row"]
    want = losses.dcs_loss(outputs.logits, batch["labels"], teacher[rows], trainer.sample_weights[rows], 0.3, 3.0)
    assert torch.equal(loss, want)
    assert "row" in batch  # the caller's batch is left as it was

    model.eval()  # evaluation is never weighted
    loss, outputs = trainer.compute_loss(model, batch, return_outputs=True)
    assert torch.equal(loss, losses.cross_entropy(outputs.logits, batch["labels"]).mean())


@pytest.mark.parametrize("drop_last", [False, True])
def test_student_logits_follow_rows_whatever_the_eval_order(tmp_path, tiny_model, sst2, drop_last):
    """group_by_length makes Trainer.predict visit the examples length-grouped and shuffled, and
    dataloader_drop_last would drop the last partial batch: row r still holds example r's logits."""
    task, tokenizer, train, dev = sst2
    accuracy = lambda p: {"accuracy": (p.predictions == p.label_ids).mean()}  # noqa: E731
    argmax = lambda logits, labels: logits.argmax(-1)  # noqa: E731  # the hooks must not touch this pass
    trainer = make_trainer(
        tmp_path, tiny_model, sst2, random_teacher(),
        args_options=dict(train_sampling_strategy="group_by_length", per_device_eval_batch_size=16,
                          dataloader_drop_last=drop_last),
        compute_metrics=accuracy, preprocess_logits_for_metrics=argmax,
    )
    visited = [int(r) for batch in trainer.get_test_dataloader(train) for r in batch["row"]]
    assert visited != train["row"] and len(visited) == (32 if drop_last else 40)  # the order the bug met
    model = trainer.model.eval()
    want = torch.empty(40, 2)
    with torch.no_grad():
        for example in train:
            inputs = {k: torch.tensor([example[k]]) for k in tokenizer.model_input_names if k in example}
            want[example["row"]] = model(**inputs).logits[0]
    got = trainer.student_logits()
    assert got.shape == (40, 2)
    # the untrained tiny model's logits differ between examples by ~1e-4; padding changes them by ~1e-8
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    assert trainer.args.dataloader_drop_last == drop_last  # restored, as are the hooks
    assert trainer.compute_metrics is accuracy and trainer.preprocess_logits_for_metrics is argmax


def test_student_logits_fail_loudly_on_a_missing_row(tmp_path, tiny_model, sst2, monkeypatch):
    trainer = make_trainer(tmp_path, tiny_model, sst2, random_teacher())
    predict = trainer.predict

    def losing_predict(dataset, *args, **kwargs):
        return predict(dataset.select(range(len(dataset) - 1)), *args, **kwargs)

    monkeypatch.setattr(trainer, "predict", losing_predict)
    with pytest.raises(DCSError, match="39 predictions for 40 rows"):
        trainer.student_logits()


def test_rows_are_checked(tmp_path, tiny_model, sst2):
    task, tokenizer, train, dev = sst2
    with pytest.raises(DCSError, match="has no 'row' column"):
        make_trainer(tmp_path, tiny_model, (task, tokenizer, train.remove_columns("row"), dev), random_teacher())
    with pytest.raises(DCSError, match="0..38 once each"):
        make_trainer(tmp_path, tiny_model, sst2, random_teacher(39))


def test_weights_saved_and_restored_with_checkpoints(tmp_path, tiny_model, sst2):
    trainer = make_trainer(tmp_path, tiny_model, sst2, random_teacher(), epochs=2)
    trainer.args.save_strategy = "epoch"
    trainer.train()
    first = tmp_path / "checkpoint-5" / "dcs_weights.safetensors"
    assert first.is_file()
    resumed = make_trainer(tmp_path, tiny_model, sst2, random_teacher(), epochs=2)
    resumed.args.save_strategy = "no"
    resumed.train(resume_from_checkpoint=str(tmp_path / "checkpoint-5"))
    assert len(trainer.weight_history) == 1 and not torch.equal(trainer.sample_weights, torch.ones(40))
    assert torch.equal(resumed.sample_weights, trainer.sample_weights)  # restored, and no update after the last epoch


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Already using the Trainer?", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


@pytest.mark.filterwarnings("ignore:'pin_memory' argument")
def test_readme_example_runs_as_printed(glue, tmp_path, monkeypatch):
    """The README's code block, unchanged, on 24 SST-2 examples instead of 2,000."""
    full = dcs_lib.data.subsample
    monkeypatch.setattr(dcs_lib.data, "subsample", lambda ds, n, seed, what="": full(ds, min(n, 24), seed, what))
    monkeypatch.setenv("DCS_GLUE_DIR", str(glue))
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(readme_example(), "README.md", "exec"), namespace)
    trainer = namespace["trainer"]
    assert isinstance(trainer, DCSTrainer)
    assert len(trainer.train_dataset) == 24
    assert [h["epoch"] for h in trainer.weight_history] == [1, 2]
    assert trainer.state.epoch == pytest.approx(3)


TWO_PROCESSES = """
import sys, torch
from transformers import AutoTokenizer, TrainingArguments
from dcs_lib.data import load_task, subsample, tokenize
from dcs_lib.hf import DCSTrainer
from dcs_lib.models import load_model
from dcs_lib.tasks import get_task

model, glue, out = sys.argv[1:4]
torch.set_num_threads(1)
task, tokenizer = get_task("sst2"), AutoTokenizer.from_pretrained(model)
train = tokenize(subsample(load_task(task, glue)["train"], 41, seed=3), tokenizer, task, max_length=32).shuffle(seed=0)
args = TrainingArguments(out, num_train_epochs=3, per_device_train_batch_size=4, learning_rate=1e-3, report_to="none",
                         save_strategy="no", logging_strategy="no", disable_tqdm=True, use_cpu=True)
teacher = torch.randn(41, 2, generator=torch.Generator().manual_seed(1))
trainer = DCSTrainer(load_model(model, task), args, train_dataset=train, processing_class=tokenizer,
                     teacher_logits=teacher)
seen = []
predict = trainer.student_logits
trainer.student_logits = lambda: seen.append(predict()) or seen[-1]
trainer.train()
torch.save({"weights": trainer.sample_weights, "seen": seen}, f"{out}/rank{trainer.args.process_index}.pt")
"""


def test_two_processes_compute_the_same_weights(tiny_model, glue, tmp_path):
    """Under torchrun (two CPU processes, gloo): predictions gathered from both, 41 rows, same weights."""
    script = tmp_path / "two.py"
    script.write_text(TWO_PROCESSES)
    subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(script), tiny_model, str(glue), str(tmp_path)],
        check=True, capture_output=True, timeout=300, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    assert torch.equal(ranks[0]["weights"], ranks[1]["weights"])
    assert len(ranks[0]["seen"]) == 2 and all(s.shape == (41, 2) for s in ranks[0]["seen"])
    w = torch.ones(41)
    for logits in ranks[0]["seen"]:
        w = weighting.update_weights(w, weighting.disagreement(logits, random_teacher(41)))
    assert torch.equal(ranks[0]["weights"], w)
