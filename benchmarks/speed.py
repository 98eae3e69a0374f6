"""How fast is dcs_lib's loop, and what does DCS cost?

    python benchmarks/speed.py [--data-dir DIR] [--n 512] [--batch-size 32] [--amp off|bf16|fp16] [--epochs 1]
                               [--repeats 3]

One epoch each (``--epochs`` more to average over), on the same model (the bundled MiniLM), data (the first N RTE
training examples), batch size and max length 128:

1. dcs_lib, vanilla, with and without length grouping, and grouped with fused AdamW
   (``TrainConfig.fused_adamw``, the optimiser the Trainer uses by default; opt-in in
   dcs_lib because it rounds differently from the default AdamW);
2. the Hugging Face Trainer with DataCollatorWithPadding: default settings, and
   with length grouping (``group_by_length=True``; in transformers 5:
   ``train_sampling_strategy="group_by_length"``);
3. a dcs_lib DCS epoch with cached teacher logits and a weight update at its end,
   for both disagreement sources;
4. KD as in Hugging Face's distillation guide: a Trainer subclass whose
   ``compute_loss`` runs the teacher on every step;
5. on a CPU with AVX512-BF16 or AMX, dcs_lib vanilla grouped under bf16 autocast
   (``--amp bf16``; on a GPU, ``--amp`` applies to every row instead).

Each configuration runs ``--repeats`` times, each time in a fresh process (so its peak
memory is its own), in rounds that alternate the order (forward, backward, forward, ...)
so that a slow spell of the machine does not land on one configuration. Printed per
configuration: the median samples per second and the spread (lowest-highest), ratios
of medians against (2), padded tokens per second (tokens processed, padding included:
the loop's speed at equal padding, apart from what grouping saves) and its ratio to the
grouped Trainer, peak memory (resident set on CPU, allocated on CUDA) and padding
efficiency (real tokens / tokens processed); then the targets, on medians. Timings
cover the training epochs only (no dev evaluation); the teacher for (3) is computed
before the clock starts, as a cached teacher would be. On CUDA a few untimed steps
first warm the GPU up (library loading, kernel choice), in every configuration alike.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

CONFIGS = [
    "dcs_lib vanilla, grouped",
    "dcs_lib vanilla, grouped, fused AdamW",
    "dcs_lib vanilla, random",
    "Trainer, default",
    "Trainer, grouped",
    "dcs_lib DCS, train source",
    "dcs_lib DCS, eval source",
    "Trainer KD, teacher every step",
    "dcs_lib vanilla, grouped, bf16",
]
BF16_ROW = CONFIGS[-1]


def prepare(args):
    from dcs_lib.methods import RunConfig, prepare_data
    from dcs_lib.models import load_tokenizer
    from dcs_lib.tasks import get_task

    cfg = RunConfig(
        task="rte",
        method="dcs",
        data_dir=args.data_dir,
        batch_size=args.batch_size,
        epochs=args.epochs + 1,
        plain_epochs=0,
        amp=args.amp,
        seed=0,
        n_dev=8,
    )
    task = get_task("rte")
    tokenizer = load_tokenizer(cfg.model)
    data = prepare_data(cfg, task, tokenizer)
    data["train"] = data["train"].select(range(args.n))  # the first N examples, rows 0..N-1 kept
    return cfg, task, tokenizer, data


def padded_tokens(batches, lengths, multiple: int = 1) -> tuple[int, int]:
    """(real tokens, tokens processed) over ``batches`` of row positions, each padded to its longest row."""
    real = sum(int(lengths[b].sum()) for b in batches)
    return real, sum(len(b) * -(-int(lengths[b].max()) // multiple) * multiple for b in batches)


def dcs_lib_epoch(name, args):
    from dcs_lib.data import LengthBatchSampler
    from dcs_lib.methods import Supervised, Weighted, teacher_logits
    from dcs_lib.models import load_model
    from dcs_lib.train import fit, pick_device, seed_everything

    cfg, task, tokenizer, data = prepare(args)
    if "bf16" in name:
        cfg = dataclasses.replace(cfg, amp="bf16")
    grouped = "random" not in name
    if "DCS" in name:
        cfg = dataclasses.replace(cfg, disagreement_source="train" if "train source" in name else "eval")
        teacher, _ = teacher_logits(dataclasses.replace(cfg, teacher_epochs=0), task, data, tokenizer, None)
        objective = Weighted(task, cfg, torch.tensor(data["train"]["label"]), teacher, pick_device(None))
    else:
        objective = Supervised(task)
    seed_everything(0)
    model = load_model(cfg.model, task)
    # one epoch more for the objective than for the loop: every measured epoch ends with a weight update
    train_cfg = dataclasses.replace(
        cfg.train_config(epochs=args.epochs, progress=False), group_by_length=grouped, fused_adamw="fused" in name
    )
    start = time.perf_counter()
    fit(model, data["train"], {}, task, objective, train_cfg, tokenizer.pad_token_id)
    seconds = time.perf_counter() - start
    lengths = np.asarray(data["train"]["length"])
    sampler = LengthBatchSampler(lengths, cfg.batch_size, group_by_length=grouped, seed=0)
    counts = []
    for epoch in range(1, args.epochs + 1):  # the batches fit drew, epoch by epoch
        sampler.set_epoch(epoch)
        counts.append(padded_tokens(list(sampler), lengths, 8 if torch.cuda.is_available() else 1))
    real, total = map(sum, zip(*counts))
    return seconds, real, total


def trainer_epoch(name, args):
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    from dcs_lib.losses import dcs_loss
    from dcs_lib.models import load_model

    cfg, task, tokenizer, data = prepare(args)
    train = data["train"].remove_columns(["idx", "row"])
    cuda = torch.cuda.is_available()
    fields = {f.name for f in dataclasses.fields(TrainingArguments)}
    grouping = {}
    if "grouped" in name:
        grouping = (
            {"group_by_length": True} if "group_by_length" in fields else {"train_sampling_strategy": "group_by_length"}
        )
    collate = DataCollatorWithPadding(tokenizer)
    processed = []

    def counting_collator(features):
        batch = collate(features)
        processed.append((int(batch["attention_mask"].sum()), batch["input_ids"].numel()))
        return batch

    with tempfile.TemporaryDirectory() as out:
        arguments = TrainingArguments(
            output_dir=out,
            per_device_train_batch_size=cfg.batch_size,
            num_train_epochs=args.epochs,
            learning_rate=cfg.lr,
            report_to=[],
            save_strategy="no",
            eval_strategy="no",
            logging_strategy="no",
            disable_tqdm=True,
            use_cpu=not cuda,
            bf16=cuda and args.amp == "bf16",
            fp16=cuda and args.amp == "fp16",
            seed=0,
            **grouping,
        )
        torch.manual_seed(0)
        model = load_model(cfg.model, task)
        kwargs = dict(model=model, args=arguments, train_dataset=train, data_collator=counting_collator)
        if "KD" in name:
            teacher = load_model(cfg.model, task).eval()

            class DistillationTrainer(Trainer):
                def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
                    labels = inputs.pop("labels")
                    outputs = model(**inputs)
                    with torch.no_grad():
                        teacher_logits = teacher.to(outputs.logits.device)(**inputs).logits
                    loss = dcs_loss(outputs.logits, labels, teacher_logits, None, cfg.alpha, cfg.temperature)
                    return (loss, outputs) if return_outputs else loss

            trainer = DistillationTrainer(**kwargs)
        else:
            trainer = Trainer(**kwargs)
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    real, total = map(sum, zip(*processed))
    return seconds, real, total


def warm_up(args) -> None:
    """A few untimed training steps at several lengths, so no configuration pays for CUDA's start."""
    from dcs_lib.models import load_model
    from dcs_lib.tasks import get_task

    model = load_model(None, get_task("rte")).cuda().train()
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.amp)
    for length in (16, 32, 64, 128):
        ids = torch.randint(1000, 2000, (args.batch_size, length), device="cuda")
        with torch.autocast("cuda", dtype=dtype, enabled=dtype is not None):
            loss = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits.float().sum()
        loss.backward()
    torch.cuda.synchronize()
    del model
    torch.cuda.empty_cache()


def measure_one(name, args) -> dict:
    if torch.cuda.is_available():
        warm_up(args)
        torch.cuda.reset_peak_memory_stats()
    seconds, real, total = (trainer_epoch if "Trainer" in name else dcs_lib_epoch)(name, args)
    peak = (
        torch.cuda.max_memory_allocated()
        if torch.cuda.is_available()
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    )  # ru_maxrss: bytes on macOS, KiB on Linux
    return {
        "name": name,
        "samples_per_s": args.n * args.epochs / seconds,
        "seconds": seconds,
        "padded_tokens_per_s": total / seconds,
        "peak_mib": peak / 2**20,
        "padding_efficiency": real / total,
    }


def spread(values) -> str:
    return f"{min(values):.1f}-{max(values):.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", help="glue_data folder (default: $DCS_GLUE_DIR, else the hub)")
    parser.add_argument("--n", type=int, default=512, help="the first N RTE training examples (default: 512)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--amp", default="off", choices=["off", "bf16", "fp16"], help="on CUDA, for every row (on the CPU: off)"
    )
    parser.add_argument("--epochs", type=int, default=1, help="epochs per configuration (default: 1)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each configuration (default: 3)")
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=CONFIGS[1:3] + CONFIGS[5:],
        metavar="NAME",
        help="leave out a row the targets do not compare (the choices)",
    )
    parser.add_argument("--one", choices=CONFIGS, help=argparse.SUPPRESS)  # internal: measure one config
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(args.one, args)))
        return

    from dcs_lib.train import cpu_supports_bf16

    cuda = torch.cuda.is_available()
    device = torch.cuda.get_device_name(0) if cuda else f"CPU, {torch.get_num_threads()} threads"
    if not cuda and args.amp != "off":
        raise SystemExit("--amp applies on CUDA only; on the CPU the bf16 row measures bf16 autocast")
    print(
        f"RTE, first {args.n} training examples, {args.epochs} epoch(s), batch {args.batch_size}, "
        f"max length 128, amp {args.amp}; {device}; median of {args.repeats} runs, order alternating\n"
    )
    names = [name for name in CONFIGS if name not in args.skip]
    if BF16_ROW in names and (cuda or not cpu_supports_bf16()):
        names.remove(BF16_ROW)  # a GPU: --amp sets every row; a CPU without AVX512-BF16/AMX: nothing to measure
        if not cuda:
            print("(no bf16 row: this CPU lacks AVX512-BF16 and AMX)\n")
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for round_ in range(args.repeats):
        for name in names if round_ % 2 == 0 else names[::-1]:
            command = [
                sys.executable,
                __file__,
                "--one",
                name,
                "--n",
                str(args.n),
                "--batch-size",
                str(args.batch_size),
            ]
            command += ["--amp", args.amp, "--epochs", str(args.epochs)]
            command += ["--data-dir", args.data_dir] if args.data_dir else []
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
            runs[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
            speed = runs[name][-1]["samples_per_s"]
            print(f"  run {round_ + 1}/{args.repeats}: {name}: {speed:.1f} samples/s", file=sys.stderr, flush=True)

    def median(name, key="samples_per_s"):
        return statistics.median(r[key] for r in runs[name])

    base, grouped = median("Trainer, default"), median("Trainer, grouped")
    grouped_tokens = median("Trainer, grouped", "padded_tokens_per_s")
    header = (
        f"{'configuration':38} {'samples/s':>9} {'spread':>11} {'vs Trainer':>10} {'vs grouped':>10} "
        f"{'tokens/s':>8} {'at equal padding':>16} {'peak MiB':>8} {'padding':>7}"
    )
    print(header)
    for name in names:
        speeds = [r["samples_per_s"] for r in runs[name]]
        tokens = median(name, "padded_tokens_per_s")
        print(
            f"{name:38} {median(name):9.1f} {spread(speeds):>11} {median(name) / base:9.2f}x "
            f"{median(name) / grouped:9.2f}x {tokens:8.0f} {tokens / grouped_tokens:15.2f}x "
            f"{median(name, 'peak_mib'):8.0f} {median(name, 'padding_efficiency'):7.2f}"
        )
    print(
        "\nspread: lowest-highest samples/s of the runs; tokens/s: tokens processed per second, padding "
        "included; at equal padding: tokens/s against the grouped Trainer's"
    )

    vanilla, dcs, kd = "dcs_lib vanilla, grouped", "dcs_lib DCS, train source", "Trainer KD, teacher every step"
    targets = [  # (label, rows it needs, ratio of medians, goal; None: a time ratio that must stay <= 1.05)
        ("dcs_lib vanilla >= 1.5x Trainer default", [vanilla], lambda: median(vanilla) / base, 1.5),
        ("dcs_lib vanilla >= 1.1x Trainer grouped", [vanilla], lambda: median(vanilla) / grouped, 1.1),
        (
            "DCS epoch (train source) <= 1.05x vanilla epoch",
            [vanilla, dcs],
            lambda: median(dcs, "seconds") / median(vanilla, "seconds"),
            None,
        ),
        ("DCS >= 1.25x per-step-teacher KD", [dcs, kd], lambda: median(dcs) / median(kd), 1.25),
    ]
    print()
    for label, needs, ratio, goal in targets:
        if not set(needs) <= set(names):
            print(f"(skipped) {label}")
            continue
        ok = ratio() <= 1.05 if goal is None else ratio() >= goal
        print(f"{'met   ' if ok else 'MISSED'} {label}: {ratio():.2f}{'x' if goal else ' (time ratio)'}")
    fused = "dcs_lib vanilla, grouped, fused AdamW"
    if {vanilla, fused} <= set(names):
        print(
            f"       fused AdamW, as the Trainer uses: {median(fused) / median(vanilla):.2f}x dcs_lib's default AdamW"
        )
    if {vanilla, BF16_ROW} <= set(names):
        print(f"       bf16 autocast on the CPU: {median(BF16_ROW) / median(vanilla):.2f}x float32")
    print("\n" + json.dumps({"device": device, "amp": args.amp, "repeats": args.repeats, "runs": runs}))


if __name__ == "__main__":
    main()
