"""What the course notebooks share, and how one is run from the shell.

Each notebook's first cells use the same three pieces, kept here once:

    DATA_DIR = glue_dir()              # parameters cell: the GLUE folder, or None for the hub
    quiet_libraries()                  # no progress bars or load reports from transformers/datasets
    DEVICE = show_environment(DATA_DIR)  # versions, device, data; the cell is NBVAL_IGNORE_OUTPUT

:data:`PAPER_VS_OURS` is the table of what the paper states and what we chose, and
:func:`committed_results` loads the GLUE grid's records that notebooks 04 and 05 read.

``python -m dcs_lib.notebook notebooks/02_sample_reweighting.ipynb`` (what ``make notebook
NB=02`` calls) runs a notebook top to bottom in a fresh kernel in full mode, drops the
metadata that changes on every run, and records the wall time in the notebook's metadata
under ``dcs.full_run_min``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .data import GLUE_DIR_ENV, project_root, resolve_data_dir
from .errors import DCSError

RUN_TIME_KEY = "dcs"  # notebook metadata: {"dcs": {"full_run_min": 16.7}}

PAPER_VS_OURS = r"""
| Piece of DCS | Where it comes from |
|---|---|
| The teacher is the same pretrained checkpoint, fine-tuned on the task | the paper |
| The student starts again from the pretrained checkpoint | the paper |
| Weights of examples where student and teacher disagree are raised, AdaBoost-style | the paper |
| Loss $\alpha\,\mathrm{CE} + (1-\alpha)\,T^2\,\mathrm{KL}(p_\text{teacher}\,\|\,p_\text{student})$ | the paper |
| Teacher trained for 2 epochs, from the student's own seed (the same head initialisation and batch order) | our reading |
| The student's first epoch is plain CE (no teacher, no weights) | our reading |
| "Disagree" = the predicted classes differ (regression: scores differ by more than 0.5) | our reading |
| Update $w_i \leftarrow w_i\, e^{\lambda d_i}$ with $\lambda = 1$ (`step="fixed"`), or AdaBoost's step $\lambda \cdot \tfrac12 \ln\tfrac{1-\varepsilon}{\varepsilon}$ (`step="adaboost"`) | our reading |
| Weights accumulate across epochs | our reading |
| After each update, weights are rescaled to mean 1 and clipped to $[0.1, 10]$ | our reading |
| A batch's loss is divided by its weight sum, so the weights rebalance examples within a batch (`weight_norm="batch"`; `"mean"` divides by the batch size) | our reading |
| $\alpha = 0.5$, $T = 2$ | our reading |
| The student's predictions for the update come from an extra eval-mode pass over the training set (`"eval"`), or from the epoch's own training logits (`"train"`) | our reading |

Every "our reading" row is an option of `dcs_lib.methods.RunConfig`, so you can change it.
""".strip()


# The real-data runs of notebooks 01-03, by mode. All three read the same settings, so that
# they share one run cache: a run trained by one notebook is loaded, not retrained, by the next.
COURSE_MODES = {
    # SST-2 with a fixed 2,000-example training subset (data_seed 0), the full dev set (872)
    # in bf16 autocast (about twice as fast on this course's CPU, which has AMX; a separate precision block)
    "full": {"n_train": 2000, "n_dev": None, "epochs": 3, "teacher_epochs": 2, "amp": "bf16"},
    # DCS_CLASSROOM=1: a meaningful run in minutes (01-03: 2.3, 1.3 and 4.5 min on a 2-core CPU)
    # ("auto": float32 on a CPU, bf16 or fp16 on a GPU); the full mode's schedule on half the data
    # (500 sentences for 2 epochs, tried first, left the model at chance)
    "classroom": {"n_train": 1000, "n_dev": None, "epochs": 3, "teacher_epochs": 2, "amp": "auto"},
    # DCS_SMOKE=1 (CI): tiny, only checks that every cell runs; 2 epochs so DCS updates its weights once
    "smoke": {"n_train": 64, "n_dev": 32, "epochs": 2, "teacher_epochs": 1, "amp": "auto"},
}
# What every mode shares: SST-2's sentences are short (max_length 64 cuts almost none), and the
# same training subset for every seed, so that runs of different seeds are paired.
COURSE_TASK = {"task": "sst2", "max_length": 64, "data_seed": 0}


def course_sizes(mode: str) -> dict:
    """The settings of ``mode`` (:data:`COURSE_MODES`) that this machine can run.

    The full mode asks for bf16 autocast, which a CPU without AVX512-BF16 or AMX (most laptops)
    cannot run: there it trains in float32 instead, and says so, since its numbers then form
    another precision block than the committed outputs. On a GPU without bf16 it takes ``auto``.
    """
    import torch

    from .train import cpu_supports_bf16, pick_device

    sizes = dict(COURSE_MODES[mode])
    if sizes["amp"] == "bf16":
        device = pick_device()
        if device.type == "cpu" and not cpu_supports_bf16():
            print("This CPU has no bf16 support (AVX512-BF16 or AMX): the runs train in float32, slower, and "
                  "their numbers will differ from the committed outputs, which used bf16 autocast.")
            sizes["amp"] = "off"
        elif device.type == "cuda" and not torch.cuda.is_bf16_supported():
            sizes["amp"] = "auto"
    return sizes


def course_mode() -> str:
    """``"smoke"`` (``DCS_SMOKE=1``), ``"classroom"`` (``DCS_CLASSROOM=1``) or ``"full"``."""
    if os.environ.get("DCS_SMOKE") == "1":
        return "smoke"
    return "classroom" if os.environ.get("DCS_CLASSROOM") == "1" else "full"


def course_dir() -> Path:
    """``runs/notebooks`` under the project root (or under the current folder outside a checkout, e.g. on Colab)."""
    return (project_root() or Path.cwd()) / "runs" / "notebooks"


def cached_run(cfg, results_dir, on_epoch=None, **kwargs) -> dict:
    """:func:`dcs_lib.methods.run`, unless a record of the same run (same :func:`run_id`) is in ``results_dir``.

    The record is stored as ``<method>-<run_id>.json``; a stored one is returned with
    ``"cached": True``, after ``on_epoch`` has been called on each of its epochs as a run would.
    Notebooks 01-03 share this cache, so none retrains what an earlier one trained.
    """
    import json

    from .methods import run, run_id

    path = Path(results_dir) / f"{cfg.method}-{run_id(cfg)}.json"
    if path.is_file():
        record = json.loads(path.read_text())
        for epoch in record["epochs"]:
            if on_epoch is not None:
                on_epoch(epoch)
        return {**record, "cached": True}
    record = run(cfg, on_epoch=on_epoch, **kwargs)
    store_run(record, cfg, results_dir)
    return {**record, "cached": False}


def store_run(record: dict, cfg, results_dir) -> Path:
    """Write ``record`` where :func:`cached_run` looks for the run ``cfg``."""
    import json

    from .methods import run_id

    path = Path(results_dir) / f"{cfg.method}-{run_id(cfg)}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(shareable(record), sort_keys=True) + "\n")
    return path


def shareable(record: dict) -> dict:
    """``record`` as the notebooks save it: without ``cached`` (how this session got it) and without the
    reader's own data folder in its config (``data_dir``: where the files are, not what the run was)."""
    out = {k: v for k, v in record.items() if k != "cached"}
    if "config" in out:
        out["config"] = {**out["config"], "data_dir": None}
    return out


def widgets_or_none():
    """``ipywidgets`` if it is installed, else None after one line saying how to get the sliders."""
    try:
        import ipywidgets
    except ImportError:
        print("ipywidgets is not installed, so there are no sliders; the static figure below shows the same. "
              "For the sliders: pip install ipywidgets (or the project's `notebooks` extra).")
        return None
    return ipywidgets


class DataNotFound(DCSError):
    """The data a notebook needs is not there. Jupyter shows it as one line, without a traceback."""

    def _render_traceback_(self) -> list[str]:  # IPython's hook for how an exception is shown
        return [f"{type(self).__name__}: {self}"]


def _shown(path: Path) -> str:
    """``path`` relative to the current folder, so that outputs name no machine's folders."""
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)


def glue_dir() -> str | None:
    """The GLUE folder (``glue_data`` layout) a notebook reads, or None: the Hugging Face hub.

    ``$DCS_GLUE_DIR`` if set (a relative path is found from the project root too, see
    :func:`dcs_lib.data.resolve_data_dir`), else None. Raises :class:`DataNotFound` when
    ``$DCS_GLUE_DIR`` names no folder, so the notebook stops at its parameters cell with one line.
    """
    given = os.environ.get(GLUE_DIR_ENV)
    if given:
        path = resolve_data_dir(given)
        if not path.is_dir():
            root = project_root()
            where = f"{Path.cwd()}" + (f" or {root}" if root and root != Path.cwd() else "")
            raise DataNotFound(
                f"{GLUE_DIR_ENV}={given} is not a folder (looked from {where}); "
                f"point it at a glue_data folder (RTE/train.tsv, ...) or unset it to use the Hugging Face hub"
            )
        return _shown(path)
    return None


def quiet_libraries() -> None:
    """Silence the progress bars and load reports of transformers and datasets: they would bury the outputs."""
    import datasets
    import transformers

    transformers.logging.set_verbosity_error()
    datasets.disable_progress_bars()


def show_environment(data_dir: str | None, amp: str = "auto"):
    """Print the versions, the device the library picks, its precision for ``amp`` and where the data comes from.

    Returns the device. The data line names the GLUE tasks found in ``data_dir``, not its path.
    """
    import platform

    import datasets
    import torch
    import transformers

    from . import __version__
    from .train import amp_dtype, pick_device

    device = pick_device()
    print(
        f"python {platform.python_version()}, torch {torch.__version__}, transformers {transformers.__version__}, "
        f"datasets {datasets.__version__}, dcs_lib {__version__}"
    )
    precision = amp_dtype(device, amp)
    print(f"device: {device}, amp={amp!r}: {'autocast to ' + str(precision) if precision else 'float32'}, "
          f"CPU threads: {torch.get_num_threads()}")
    if data_dir:
        tasks = sorted(d.name for d in Path(data_dir).iterdir() if (d / "dev.tsv").is_file())
        print(f"data: a glue_data folder (${GLUE_DIR_ENV}) with {', '.join(tasks)}")
    else:
        print("data: the Hugging Face hub")
    return device


def paper_vs_ours():
    """:data:`PAPER_VS_OURS` as a Markdown object, for a notebook cell to show."""
    from IPython.display import Markdown

    return Markdown(PAPER_VS_OURS)


def committed_results(results: Path):
    """The GLUE grid's records and its CPU repeats, checked against the committed grid file.

    Returns ``(records, grid_configs, grid_base, cpu_repeats)`` and prints how many runs are done.
    """
    import tomllib

    from .experiments import load_results, read_grid, run_id

    grid_file = results / "glue" / "grid.toml"
    records = load_results(results / "glue" / "runs.jsonl")
    configs = read_grid(grid_file)
    base = tomllib.loads(grid_file.read_text())["base"]
    # a setting repeated in several blocks (lam = 1 is also the default of the quality runs) is one run
    planned = {run_id(c) for c in configs}
    if not {r["run_id"] for r in records} <= planned:
        raise DCSError(f"{results / 'glue' / 'runs.jsonl'} holds runs that {grid_file} does not plan")
    print(
        f"{len(records)} of the grid's {len(planned)} distinct runs are finished; devices:",
        sorted({r["device"] for r in records}),
    )
    # a few of those runs repeated on a CPU in float32, to see what the device alone does
    cpu_repeats = load_results(results / "glue" / "cpu-repeats.jsonl")
    if not {r["run_id"] for r in cpu_repeats} <= {r["run_id"] for r in records}:
        raise DCSError(f"{results / 'glue' / 'cpu-repeats.jsonl'} repeats runs that are not in runs.jsonl")
    print("protocol ([base] of the grid file):", base)
    return records, configs, base, cpu_repeats


def strip_volatile(nb):
    """Drop what changes on every run but is not content: cell timings, widget state and widget outputs."""
    nb.metadata.pop("widgets", None)
    nb.metadata["language_info"] = {"name": "python"}
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("ExecuteTime", None)
        if cell.cell_type == "code":  # a widget without its state renders as a raw `interactive(...)` line
            cell.outputs = [o for o in cell.outputs if "application/vnd.jupyter.widget-view+json" not in o.get("data", {})]
    return nb


def full_run_minutes(nb) -> float | None:
    """The wall time of the notebook's last full run, in minutes, as ``execute`` recorded it."""
    return nb.metadata.get(RUN_TIME_KEY, {}).get("full_run_min")


def execute(path: Path) -> float:
    """Run the notebook at ``path`` top to bottom in a fresh kernel, in full mode; return minutes.

    The kernel runs in the notebook's folder, with ``DCS_SMOKE`` and ``DCS_CLASSROOM`` unset
    (the recorded time is the full mode's) and ``TQDM_DISABLE=1`` unless set otherwise.
    Outputs replace the old ones only when every cell ran without error.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    for mode in ("DCS_SMOKE", "DCS_CLASSROOM"):
        os.environ.pop(mode, None)
    os.environ.setdefault("TQDM_DISABLE", "1")
    client = NotebookClient(nb, timeout=None, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as err:
        raise DCSError(f"{path}: a cell failed; the notebook on disk is unchanged.\n{err}") from None
    minutes = (time.perf_counter() - start) / 60
    strip_volatile(nb)
    nb.metadata[RUN_TIME_KEY] = {"full_run_min": round(minutes, 1)}
    nbformat.validate(nb)
    nbformat.write(nb, path)
    return minutes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run course notebooks top to bottom in full mode, in place.")
    parser.add_argument("notebooks", nargs="+", type=Path, help="the .ipynb files, e.g. notebooks/02_*.ipynb")
    args = parser.parse_args(argv)
    for path in args.notebooks:
        try:
            minutes = execute(path)
        except DCSError as err:
            print(err, file=sys.stderr)
            return 2
        print(f"{path}: executed in {minutes:.1f} min (recorded in its metadata as {RUN_TIME_KEY}.full_run_min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
