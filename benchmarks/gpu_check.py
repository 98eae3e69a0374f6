"""Check the CUDA path: vanilla and DCS for one epoch on RTE in fp32, bf16 and fp16.

    python benchmarks/gpu_check.py [--data-dir DIR] [--model M] [--n-train N]

For each precision it trains one vanilla epoch and one weighted DCS epoch (after
DCS's plain first epoch and a one-epoch teacher), checks
that the loss stayed finite and the dev accuracy did not collapse (above 0.45 on RTE,
where the majority class scores 0.527): a check that each precision path runs without
overflow or divergence, not that one epoch learns RTE (it need not), and prints samples per second (training epoch plus dev evaluation) and peak GPU memory. Without a
GPU the CUDA-only parts are skipped with a message and one fp32 epoch runs on the
CPU on a small subset, so the script itself is checked everywhere.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from dcs_lib.methods import RunConfig, prepare_data, run
from dcs_lib.models import load_tokenizer
from dcs_lib.tasks import get_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", help="glue_data folder (default: $DCS_GLUE_DIR, else the hub)")
    parser.add_argument("--model", default="bundled-minilm")
    parser.add_argument("--n-train", type=int, help="training examples (default: all on GPU, 64 on CPU)")
    args = parser.parse_args()

    cuda = torch.cuda.is_available()
    if cuda:
        print(f"GPU: {torch.cuda.get_device_name(0)}; torch {torch.__version__}, CUDA {torch.version.cuda}")
        precisions = ["off", "bf16", "fp16"] if torch.cuda.is_bf16_supported() else ["off", "fp16"]
        if "bf16" not in precisions:
            print("skipped: bf16 (not supported by this GPU)")
    else:
        print("no CUDA device: skipping bf16 and fp16 (CUDA only); one fp32 epoch on the CPU checks the script")
        precisions = ["off"]
    n_train = args.n_train or (None if cuda else 64)

    base = RunConfig(
        task="rte",
        model=args.model,
        data_dir=args.data_dir,
        n_train=n_train,
        n_dev=None if cuda else 64,
        epochs=1,
        teacher_epochs=1,
        seed=1,
    )
    task = get_task("rte")
    tokenizer = load_tokenizer(base.model)
    data = prepare_data(base, task, tokenizer)
    print(f"RTE: {len(data['train'])} training, {len(data['validation'])} dev examples; batch {base.batch_size}\n")
    print(f"{'method':8} {'amp':5} {'dev acc':>8} {'loss':>8} {'samples/s':>10} {'peak GPU MiB':>13}")
    failures = []
    for amp in precisions:
        for method in ("vanilla", "dcs"):
            # DCS gets its plain first epoch too, so that the measured (last) epoch is a weighted one
            cfg = dataclasses.replace(base, method=method, amp=amp, epochs=1 if method == "vanilla" else 2)
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            record = run(cfg, progress=False, cache_dir=None, data=data, tokenizer=tokenizer)
            epoch = record["epochs"][-1]
            speed = len(data["train"]) / epoch["time_s"]
            peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else float("nan")
            accuracy = epoch["dev"]["accuracy"]
            print(f"{method:8} {amp:5} {accuracy:8.4f} {epoch['train_loss']:8.4f} {speed:10.1f} {peak:13.0f}")
            if not (torch.isfinite(torch.tensor(epoch["train_loss"])) and (accuracy > 0.45 or not cuda)):
                failures.append(f"{method}/{amp}")
    print("\nall finite, none collapsed" if not failures else f"\nFAILED: {', '.join(failures)}")
    raise SystemExit(1 if failures else 0)


if __name__ == "__main__":
    started = time.perf_counter()
    try:
        main()
    finally:
        print(f"({time.perf_counter() - started:.0f}s)")
