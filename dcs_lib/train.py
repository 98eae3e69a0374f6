"""The training loop: one readable function, :func:`fit`, plus the helpers it needs.

What the loop does, in order, every epoch: draw batches (length-grouped and
dynamically padded), run the forward pass under autocast when AMP is on, ask the
*objective* for the loss, step AdamW with a linear warm-up and decay, and at the
end of the epoch let the objective update its state (DCS updates its sample
weights here) and evaluate on the dev set(s).

The objective is what distinguishes vanilla fine-tuning, KD, reweighting and DCS
(:mod:`dcs_lib.methods`); the loop itself knows nothing about teachers or weights.
"""

from __future__ import annotations

import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import numpy as np
import torch
from datasets import Dataset
from tqdm.auto import tqdm

from . import distributed, losses
from . import metrics as metric_fns
from .data import LengthBatchSampler, PadCollator
from .errors import DCSError, NonFiniteLossError
from .tasks import Task

AMP_MODES = ("auto", "bf16", "fp16", "off")


@dataclass
class TrainConfig:
    epochs: int = 3
    batch_size: int = 32
    eval_batch_size: int = 128
    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    grad_accum: int = 1  # optimiser step every this many batches
    max_grad_norm: float = 1.0  # 0 turns clipping off
    amp: str = "auto"  # auto: bf16 (or fp16 + GradScaler) on CUDA, off on CPU and MPS
    compile: bool = False  # torch.compile the model
    fused_adamw: bool = False  # one fused AdamW kernel: faster, but rounds differently from the default (opt-in)
    group_by_length: bool = True
    device: str | None = None  # None: cuda -> mps -> cpu
    progress: bool | None = None  # None: on unless TQDM_DISABLE is set
    seed: int = 0  # shuffling; dropout draws from the global generator seeded by seed_everything


def pick_device(override: str | None = None) -> torch.device:
    """The best device available (cuda, then mps, then cpu), or ``override``."""
    if override:
        device = torch.device(override)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise DCSError(f"device {override!r} was asked for but CUDA is not available")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda", distributed.world().local_rank)  # under torchrun: this rank's GPU
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and every GPU); return a generator for DataLoaders."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    return torch.Generator().manual_seed(seed)


SYNC_EVERY = 20  # losses are copied to the host and checked for nan/inf every this many steps


def cpu_supports_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX), where autocast pays off."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: ask oneDNN instead
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))


def amp_dtype(device: torch.device, amp: str = "auto") -> torch.dtype | None:
    """The autocast dtype for ``amp`` on ``device``, or None for full float32.

    ``auto`` is bf16 (or fp16 where bf16 is missing) on CUDA and off elsewhere, so that
    CPU results stay float32 unless bf16 is asked for by name.
    """
    if amp not in AMP_MODES:
        raise DCSError(f"unknown amp mode {amp!r}; choose one of {AMP_MODES}")
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return None
    if amp == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and amp == "bf16" and not cpu_supports_bf16():
        raise DCSError("--amp bf16 on the CPU needs AVX512-BF16 or AMX, which this CPU lacks; use --amp off")
    return torch.bfloat16 if amp == "bf16" else torch.float16


def progress_enabled(progress: bool | None) -> bool:
    return (not os.environ.get("TQDM_DISABLE")) if progress is None else progress


def make_loader(
    dataset: Dataset,
    batch_size: int,
    pad_token_id: int,
    device: torch.device,
    *,
    shuffle: bool,
    group_by_length: bool = True,
    seed: int = 0,
    num_replicas: int = 1,
    rank: int = 0,
):
    """A DataLoader of padded batches; evaluation loaders sort by length (fastest, order is irrelevant)."""
    sampler = LengthBatchSampler(
        dataset["length"],
        batch_size,
        shuffle=shuffle,
        group_by_length=group_by_length,
        seed=seed,
        num_replicas=num_replicas,
        rank=rank,
    )
    collate = PadCollator(pad_token_id, pad_to_multiple_of=8 if device.type == "cuda" else None)
    # An explicit generator: otherwise every pass over a loader draws from the global generator,
    # and an extra evaluation pass would change the dropout masks of all later steps.
    return torch.utils.data.DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=collate,
        pin_memory=device.type == "cuda",
        generator=torch.Generator().manual_seed(seed),
    )


MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def forward(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Logits (batch, num_labels) for a batch already on the model's device."""
    return model(**{k: batch[k] for k in MODEL_INPUTS if k in batch}).logits


class RowCollector:
    """Collects per-example outputs by ``row`` -> (n, width), gathered across ranks.

    Under DDP each rank sees a share of the rows (and a few twice, where batches were
    repeated to even out the ranks); summing per row across ranks and dividing by
    the number of times each row was seen gives every rank the whole matrix.
    """

    def __init__(self, n: int, width: int, device: torch.device):
        self.values = torch.zeros(n, width, device=device)
        self.seen = torch.zeros(n, 1, device=device)

    def add(self, rows: torch.Tensor, values: torch.Tensor) -> None:
        self.values.index_add_(0, rows, values.detach().float())
        self.seen.index_add_(0, rows, torch.ones(len(rows), 1, device=self.seen.device))

    def result(self) -> torch.Tensor:
        distributed.sum_(self.values)
        distributed.sum_(self.seen)
        return (self.values / self.seen.clamp(min=1)).cpu()


def num_labels(model) -> int:
    return getattr(model, "module", model).config.num_labels


@torch.no_grad()
def predict(
    model,
    loader,
    device: torch.device,
    n: int,
    *,
    dtype: torch.dtype | None = None,
    progress: bool = False,
    desc: str = "predict",
) -> torch.Tensor:
    """Eval-mode logits for every example in ``loader``'s dataset -> (n, num_labels), float32, CPU.

    Row ``i`` of the result belongs to the example with ``row == i``, whatever order
    the loader visits them in (and whichever rank visited it).
    """
    model.eval()
    collected = RowCollector(n, num_labels(model), device)
    for batch in tqdm(loader, desc=desc, leave=False, disable=not progress):
        batch = to_device(batch, device)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            collected.add(batch["rows"], forward(model, batch))
    return collected.result()


def scores(task: Task, logits: torch.Tensor, labels) -> dict[str, float]:
    """GLUE metrics of ``task`` for logits (n, num_labels) against labels (n,)."""
    predictions = logits.reshape(-1) if task.is_regression else logits.argmax(dim=-1)
    return metric_fns.compute(task.metrics, predictions.numpy(), np.asarray(labels))


class Objective(Protocol):
    """What a training method supplies to :func:`fit`."""

    needs_train_logits: bool  # keep the logits of every training step for end_epoch

    def loss(self, logits: torch.Tensor, batch: dict[str, torch.Tensor], epoch: int) -> torch.Tensor: ...

    def end_epoch(
        self, epoch: int, train_logits: torch.Tensor | None, predict_train: Callable[[], torch.Tensor]
    ) -> dict | None: ...

    def state(self) -> dict[str, torch.Tensor]: ...  # what a checkpoint must keep (DCS: the weights)

    def load_state(self, tensors: dict[str, torch.Tensor]) -> None: ...


class Supervised:
    """Plain fine-tuning, for vanilla runs and teachers: CE (or squared error) on the labels."""

    needs_train_logits = False

    def __init__(self, task: Task):
        self.regression = task.is_regression

    def loss(self, logits, batch, epoch):
        return losses.weighted_mean(losses.supervised(logits, batch["labels"], self.regression))

    def end_epoch(self, epoch, train_logits, predict_train):
        return None

    def state(self):
        return {}

    def load_state(self, tensors):
        pass


def _optimizer(model, cfg: TrainConfig) -> torch.optim.AdamW:
    # No weight decay on biases and LayerNorm weights, as in BERT.
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if param.ndim == 1 else decay).append(param)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.fused_adamw:
        # One kernel reads and writes each parameter once per step (on a 2-core CPU the step of
        # MiniLM's 23M parameters drops from ~0.3 s to ~0.05 s), but its rounding differs.
        return torch.optim.AdamW(groups, lr=cfg.lr, fused=True)
    # foreach batches the update over all tensors; PyTorch picks it by itself only on GPUs. On the
    # CPU it computes bit for bit what the default per-tensor loop computes, a little faster.
    return torch.optim.AdamW(groups, lr=cfg.lr, foreach=True)


def group_size(step: int, batches: int, accum: int) -> int:
    """How many batches the optimiser step of batch ``step`` (1-based) of ``batches`` sums over.

    ``accum``, except for the epoch's last step when ``batches`` is not a multiple of it: that
    step gets the batches left over. Each loss is divided by this, so every step's gradient
    is the mean over its own batches (a short last step is not scaled down).
    """
    return min(accum, batches - (step - 1) // accum * accum)


def _linear_schedule(optimizer, warmup: int, total: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def fit(
    model,
    train_set: Dataset,
    eval_sets: dict[str, Dataset],
    task: Task,
    objective: Objective,
    cfg: TrainConfig,
    pad_token_id: int = 0,
    *,
    desc: str = "train",
    on_epoch: Callable[[dict], None] | None = None,
    checkpoint=None,
    resume: bool = False,
) -> list[dict]:
    """Train ``model`` on ``train_set`` for ``cfg.epochs`` epochs; return one record per epoch.

    Each record: ``{"epoch", "train_loss", "dev": {metric: value}, "time_s"}`` plus
    whatever the objective's ``end_epoch`` returned under ``"weights"``. ``on_epoch``
    is called with each record as soon as it exists. With a
    :class:`~dcs_lib.checkpoint.Checkpointer`, everything is saved after each epoch;
    with ``resume``, training continues after the newest checkpoint exactly as if
    it had never stopped.
    """
    world = distributed.world()
    device = pick_device(cfg.device)
    dtype = amp_dtype(device, cfg.amp)
    show = progress_enabled(cfg.progress) and world.is_main
    model.to(device)
    step_model = model
    if world.enabled:
        step_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    if cfg.compile:
        step_model = torch.compile(step_model)

    shard = dict(num_replicas=world.size, rank=world.rank)
    loader = make_loader(
        train_set,
        cfg.batch_size,
        pad_token_id,
        device,
        shuffle=True,
        group_by_length=cfg.group_by_length,
        seed=cfg.seed,
        **shard,
    )
    train_eval_loader = make_loader(train_set, cfg.eval_batch_size, pad_token_id, device, shuffle=False, **shard)
    eval_loaders = {
        split: make_loader(ds, cfg.eval_batch_size, pad_token_id, device, shuffle=False, **shard)
        for split, ds in eval_sets.items()
    }

    steps_per_epoch = math.ceil(len(loader) / cfg.grad_accum)
    total_steps = steps_per_epoch * cfg.epochs
    optimizer = _optimizer(model, cfg)
    scheduler = _linear_schedule(optimizer, int(cfg.warmup_ratio * total_steps), total_steps)
    # fp16 needs loss scaling to keep small gradients from underflowing; bf16 does not.
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)

    def predict_train() -> torch.Tensor:
        return predict(
            step_model, train_eval_loader, device, len(train_set), dtype=dtype, progress=show, desc="predict train"
        )

    history, first = [], 1
    if resume and checkpoint is not None and checkpoint.latest() is not None:
        done, history, tensors = checkpoint.load(model, optimizer, scheduler, scaler)
        objective.load_state({k: v.to(device) for k, v in tensors.items()})
        first = done + 1
    for epoch in range(first, cfg.epochs + 1):
        start = time.perf_counter()
        loader.batch_sampler.set_epoch(epoch)
        model.train()
        train_logits = RowCollector(len(train_set), task.num_labels, device) if objective.needs_train_logits else None
        total, count = 0.0, 0
        unchecked: list[tuple[int, torch.Tensor]] = []  # losses not yet copied to the host
        bar = tqdm(loader, desc=f"{desc} epoch {epoch}/{cfg.epochs}", disable=not show)
        for step, batch in enumerate(bar, start=1):
            batch = to_device(batch, device)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                logits = forward(step_model, batch)
            loss = objective.loss(logits.float(), batch, epoch)
            unchecked.append((step, loss.detach()))
            # Reading a loss waits for the device to finish the step, so a GPU could not run ahead;
            # copy the losses in one go every SYNC_EVERY steps. A nan still names its own step.
            if step % SYNC_EVERY == 0 or step == len(loader):
                values = torch.stack([value for _, value in unchecked]).tolist()
                for (at, _), value in zip(unchecked, values):
                    if not math.isfinite(value):
                        raise NonFiniteLossError(
                            f"{desc}: the loss became {value} at epoch {epoch}, step {at}; "
                            "try a lower learning rate, or --amp off"
                        )
                    total += value  # one at a time, in step order: the same float sum as ever
                count += len(values)
                unchecked.clear()
            if train_logits is not None:
                train_logits.add(batch["rows"], logits)
            scaler.scale(loss / group_size(step, len(loader), cfg.grad_accum)).backward()
            if step % cfg.grad_accum == 0 or step == len(loader):
                if cfg.max_grad_norm:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                scale = scaler.get_scale() if scaler.is_enabled() else None
                scaler.step(optimizer)
                scaler.update()
                if scale is None or scaler.get_scale() >= scale:  # fp16: no schedule step for a skipped update
                    scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            if step % 10 == 0 and count:
                bar.set_postfix(loss=f"{total / count:.4f}")
        bar.close()

        record = {"epoch": epoch, "train_loss": total / count}
        stats = objective.end_epoch(epoch, train_logits.result() if train_logits is not None else None, predict_train)
        if stats is not None:
            record["weights"] = stats
        record["dev"] = evaluate(step_model, eval_loaders, eval_sets, task, device, dtype)
        record["time_s"] = time.perf_counter() - start
        history.append(record)
        if checkpoint is not None:
            if world.is_main:
                checkpoint.save(epoch, model, optimizer, scheduler, scaler, objective.state(), history)
            distributed.barrier()
        if on_epoch:
            on_epoch(record)
    return history


def evaluate(
    model,
    loaders: dict,
    datasets: dict[str, Dataset],
    task: Task,
    device: torch.device,
    dtype: torch.dtype | None = None,
) -> dict[str, float]:
    """Metrics on every eval split; the first split's keys are plain, others are prefixed by split name."""
    results = {}
    for i, (split, loader) in enumerate(loaders.items()):
        logits = predict(model, loader, device, len(datasets[split]), dtype=dtype)
        prefix = "" if i == 0 else f"{split}_"
        results.update({prefix + k: v for k, v in scores(task, logits, datasets[split]["label"]).items()})
    return results
