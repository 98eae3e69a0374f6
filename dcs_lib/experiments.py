"""Grids of runs and the results file they grow.

A results file holds one JSON object per line, one line per finished run. A line
is added atomically (the file is rewritten to a temporary name, then renamed over
the old one), so a crash leaves either the old file or the new one, never half a
line. Every record carries a ``run_id``, a hash of the settings that change
results; running a grid again skips the runs already in the file, so a killed grid
resumes where it stopped, with nothing lost or duplicated.

A grid file (TOML or JSON) has a ``base`` table of settings shared by all runs and
one or more ``grid`` tables, each a product of lists, expanded with the first key
varying slowest::

    [base]
    epochs = 3

    [[grid]]
    task = ["rte", "mrpc"]
    method = ["vanilla", "dcs"]
    seed = [1, 2, 3]

An axis may also be a list of tables, whose settings vary together rather than as a
product; its name is free. Each student below gets the next seed's run as its teacher::

    [[grid]]
    method = ["kd", "dcs"]
    pairs = [{seed = 1, teacher_seed = 2}, {seed = 2, teacher_seed = 3}, {seed = 3, teacher_seed = 1}]

A grid can be split across processes or machines with ``shard=(i, n)``: runs that
share a teacher (same task, seed, data and optimisation) stay together, so each
teacher is trained once, and the groups are spread so the shards take about as
long. Give each shard its own results file; :func:`load_results` reads them all.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import shutil
import tempfile
import tomllib
import time
import warnings
from pathlib import Path
from typing import Iterator

from .checkpoint import Checkpointer
from .errors import DCSError
from .methods import RunConfig, describe_device, prepare_data, run, run_id
from .models import load_tokenizer
from .teacher import TEACHER_FIELDS, teacher_model, teacher_seed
from .train import pick_device

# ---------------------------------------------------------------- the results file


def check_writable(path: str | Path) -> Path:
    """Fail now, before hours of training, if ``path`` cannot be written."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".check") as probe:
            probe.write(b"x" * 4096)
            probe.flush()
            os.fsync(probe.fileno())
        if path.exists() and not os.access(path, os.W_OK):
            raise PermissionError(f"{path} is read-only")
    except OSError as err:
        raise DCSError(f"cannot write results to {path}: {err.strerror or err}") from None
    return path


def append_record(path: str | Path, record: dict) -> None:
    """Add ``record`` as one line to the results file, atomically."""
    path = Path(path)
    old = path.read_bytes() if path.exists() else b""
    if old and not old.endswith(b"\n"):
        old += b"\n"  # a line cut short by an older writer stays its own (skipped) line
    line = json.dumps(record, sort_keys=True).encode() + b"\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(old + line)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_stale_partial_files(folder: str | Path | None, pattern: str = ".*.tmp", older_than_s: float = 3600) -> list[Path]:
    """Delete the half-written files a killed process left in ``folder``; return them.

    Records and cached teachers are written to a ``.<name>.<random>.tmp`` file first and renamed
    into place (:func:`append_record`), so a process killed mid-write leaves only such a file,
    never a damaged record. Writing one takes seconds; a file older than ``older_than_s`` belongs
    to no live writer, and another process that shares the folder may still be writing a newer one.
    """
    if folder is None or not Path(folder).is_dir():
        return []
    cutoff = time.time() - older_than_s
    removed = []
    for stale in Path(folder).glob(pattern):
        try:
            if stale.is_file() and stale.stat().st_mtime < cutoff:
                stale.unlink()
                removed.append(stale)
        except FileNotFoundError:  # another process removed it first
            pass
    return removed


def load_results(path: str | Path | list) -> list[dict]:
    """Every valid record in a results file (or a list of them); a corrupt line is skipped with a warning naming it."""
    if isinstance(path, (list, tuple)):
        return [record for one in path for record in load_results(one)]
    path = Path(path)
    if not path.is_file():
        raise DCSError(f"results file {path} does not exist")
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or not {"task", "method", "seed", "epochs"} <= record.keys():
                raise ValueError("not a run record")
        except ValueError as err:
            warnings.warn(f"{path}: line {number}: skipped, not a valid run record ({err})", stacklevel=2)
            continue
        records.append(record)
    return records


# ---------------------------------------------------------------- grids


def read_grid(path: str | Path) -> list[RunConfig]:
    """Expand a grid file into run configurations, in the order they will run.

    Every setting is checked against its RunConfig field (a TOML int is fine for a float),
    and every run is validated; a bad one fails with a DCSError naming the file, the table
    (``[base]`` or ``[[grid]] N``) and the setting.
    """
    path = Path(path)
    if not path.is_file():
        raise DCSError(f"grid file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
        spec = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, UnicodeDecodeError) as err:
        raise DCSError(f"grid file {path}: cannot parse it: {err}") from None
    base = spec.get("base", {})
    grids = spec.get("grid", [{}])
    grids = [grids] if isinstance(grids, dict) else grids
    _check_settings(path, "[base]", base.items())
    configs = []
    for number, grid in enumerate(grids, start=1):
        axes = [v if isinstance(v, list) else [v] for v in grid.values()]
        # every axis as a list of {setting: value} tables; a plain axis has one setting per table
        axes = [
            values if values and all(isinstance(v, dict) for v in values) else [{key: v} for v in values]
            for key, values in zip(grid, axes)
        ]
        items = [item for axis in axes for table in axis for item in table.items()]
        _check_settings(path, f"[[grid]] {number}", items)
        for tables in itertools.product(*axes):
            varied = {key: value for table in tables for key, value in table.items()}
            settings = {**base, **varied}
            cfg = RunConfig(**settings)
            try:
                cfg.validate()
            except DCSError as err:
                key = _culprit(settings)
                table = f"[[grid]] {number}" if key is None or key in varied else "[base]"
                what = f"the run with {_describe(varied)}" if key is None else f"{key} = {settings[key]!r}"
                raise DCSError(f"grid file {path}: {what} ({table}): {err}") from None
            configs.append(cfg)
    return configs


def _check_settings(path: Path, where: str, items) -> None:
    """Fail on an unknown setting, or a value of the wrong type for its RunConfig field."""
    kinds = {f.name: str(f.type) for f in dataclasses.fields(RunConfig)}
    for key, value in items:
        if key not in kinds:
            raise DCSError(f"grid file {path}: unknown setting {key!r} ({where}); known: {sorted(kinds)}")
        problem = _type_problem(value, kinds[key])
        if problem:
            raise DCSError(f"grid file {path}: {key} = {value!r} ({where}): {problem}")


def _type_problem(value, kind: str) -> str | None:
    """Why ``value`` cannot be a setting of type ``kind`` ("float", "int | None", ...), or None if it can."""
    optional, base = kind.endswith(" | None"), kind.removesuffix(" | None")
    if value is None:
        return None if optional else f"must be of type {base}, got null"
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    fits = {
        "bool": isinstance(value, bool),
        "int": number and isinstance(value, int),
        "float": number,  # a TOML int is a fine float
        "str": isinstance(value, str),
    }
    if fits[base]:
        return None
    hint = " (write it without quotes)" if base in ("int", "float") and isinstance(value, str) else ""
    return f"must be of type {base}, got {type(value).__name__}{hint}"


def _culprit(settings: dict) -> str | None:
    """The first setting that, put back to its default, makes the run valid; None if no single one does."""
    defaults = dataclasses.asdict(RunConfig())
    for key in settings:
        if settings[key] == defaults[key]:
            continue
        try:
            with warnings.catch_warnings():  # a trial run's warnings are not the user's
                warnings.simplefilter("ignore")
                RunConfig(**{**settings, key: defaults[key]}).validate()
        except DCSError:
            continue
        return key
    return None


def _describe(settings: dict) -> str:
    return ", ".join(f"{key} = {value!r}" for key, value in settings.items()) or "[base] settings only"


def pending(
    configs: list[RunConfig], results: str | Path, done_in: list | tuple = ()
) -> Iterator[tuple[int, RunConfig, bool]]:
    """(position, config, already_done) for each config, checking the results file as it is now.

    Runs found in any of the files ``done_in`` count as done too, but only where they ran in
    the block the config runs in here (device, precision and torch version, as
    :func:`dcs_lib.report.block_of` names it): a run id leaves the device out, and with
    ``amp="auto"`` the same config trains in float32 on a CPU and in bf16 on CUDA, two blocks
    a report never pools. A grid continued on another machine, GPU model, process count or
    torch version runs its whole block there. Records that do not say where they ran count
    wherever the grid runs.
    """
    import torch

    from .report import block_of
    from .teacher import precision

    def block_here(cfg: RunConfig) -> str:
        device = pick_device(cfg.device)
        here = {"device": describe_device(device), "precision": precision(device, cfg.amp)}
        return block_of({**here, "versions": {"torch": torch.__version__}})

    files = [Path(f) for f in done_in] + ([Path(results)] if Path(results).exists() else [])
    records = load_results(files)
    anywhere = {r.get("run_id") for r in records if "device" not in r}
    blocks = {(r.get("run_id"), block_of(r)) for r in records if "device" in r}
    placed = {rid for rid, _ in blocks}
    seen = set()
    for i, cfg in enumerate(configs):
        rid = run_id(cfg)
        done = rid in seen or rid in anywhere or (rid in placed and (rid, block_here(cfg)) in blocks)
        yield i, cfg, done
        seen.add(rid)


# Training-set sizes of the GLUE tasks; only used to balance shards.
TRAIN_SIZES = {
    "cola": 8551, "sst2": 67349, "mrpc": 3668, "qqp": 363846, "stsb": 5749,
    "mnli": 392702, "qnli": 104743, "rte": 2490, "wnli": 635,
}  # fmt: skip


def teacher_group(cfg: RunConfig) -> tuple:
    """Runs with the same key can share a teacher (and its cached logits).

    The teacher's settings (:data:`~dcs_lib.teacher.TEACHER_FIELDS`, its seed, model,
    folds and data subset) except its epoch count, so that a teacher-epochs ablation
    stays with the runs it is compared with. A vanilla run counts as the teacher of
    its own seed, so the runs that take it as their peer teacher stay with it.
    """
    fields = tuple(cfg.task.lower() if f == "task" else getattr(cfg, f) for f in TEACHER_FIELDS)
    data_seed = cfg.seed if cfg.data_seed is None else cfg.data_seed
    folds = cfg.teacher_folds if cfg.uses_teacher else 1
    return (*fields, teacher_seed(cfg), teacher_model(cfg), folds, data_seed, cfg.amp)


def run_cost(cfg: RunConfig) -> float:
    """Rough cost of a run in training examples seen: student epochs, plus a teacher's for kd and dcs."""
    size = TRAIN_SIZES.get(cfg.task.lower(), 10_000)
    size = min(size, cfg.n_train) if cfg.n_train else size - (cfg.holdout or 0)
    return size * (cfg.epochs + (cfg.teacher_epochs if cfg.uses_teacher else 0))


def select_runs(configs: list[RunConfig], only: dict[str, list]) -> list[RunConfig]:
    """The runs whose setting ``key`` is one of ``only[key]`` for every key, in grid order.

    Task names match in any case; numbers match by value (``1`` selects ``1.0``).
    """
    known = {f.name for f in dataclasses.fields(RunConfig)}
    for key in only:
        if key not in known:
            raise DCSError(f"cannot select runs by {key!r}: not a run setting; known: {sorted(known)}")

    def norm(value):
        return value.lower() if isinstance(value, str) else value

    wanted = {key: [norm(v) for v in values] for key, values in only.items()}
    return [cfg for cfg in configs if all(norm(getattr(cfg, k)) in vs for k, vs in wanted.items())]


def select_shard(configs: list[RunConfig], index: int, count: int) -> list[RunConfig]:
    """The runs of shard ``index`` (0-based) of ``count``, in grid order.

    Runs are grouped by :func:`teacher_group`; groups go, most costly first, to the
    shard with the least work so far. Every shard computes the same split.
    """
    if not 0 <= index < count:
        raise DCSError(f"shard {index + 1}/{count}: the shard number must be between 1 and {count}")
    groups: dict[tuple, list[int]] = {}
    for i, cfg in enumerate(configs):
        groups.setdefault(teacher_group(cfg), []).append(i)
    cost = {key: sum(run_cost(configs[i]) for i in members) for key, members in groups.items()}
    load = [0.0] * count
    mine: list[int] = []
    for key in sorted(groups, key=lambda k: (-cost[k], groups[k][0])):
        target = min(range(count), key=lambda s: (load[s], s))
        load[target] += cost[key]
        if target == index:
            mine.extend(groups[key])
    return [configs[i] for i in sorted(mine)]


def run_grid(
    configs: list[RunConfig],
    results: str | Path,
    *,
    data_dir: str | None = None,
    progress: bool | None = None,
    cache_dir: str | Path | None = "runs/cache",
    shard: tuple[int, int] | None = None,
    done_in: list | tuple = (),
    only: dict[str, list] | None = None,
    checkpoint_dir: str | Path | None = None,
    log=print,
) -> int:
    """Run every configuration not yet in ``results``; return how many ran.

    Data and tokenizer are loaded once per task and subset and shared by its runs.
    With ``only={key: values}`` only the matching runs are considered (:func:`select_runs`);
    with ``shard=(i, n)`` only shard ``i`` (0-based) of ``n`` of them (:func:`select_shard`).
    Runs already in any results file of ``done_in`` are skipped as well.

    With ``checkpoint_dir`` each run is saved after every epoch in
    ``checkpoint_dir/<run_id>``, so a run interrupted midway resumes after its last
    finished epoch rather than from the start; the folder is removed once the run's
    record is in ``results``.
    """
    check_writable(results)
    for folder, pattern in ((Path(results).parent, f".{Path(results).name}.*.tmp"), (cache_dir, ".*.tmp")):
        for stale in remove_stale_partial_files(folder, pattern):
            log(f"removed {stale}, left half-written by a process that was killed")
    if only:
        configs = select_runs(configs, only)
    if shard is not None:
        configs = select_shard(configs, *shard)
    prepared: dict[tuple, tuple] = {}
    ran = 0
    for i, cfg, done in pending(configs, results, done_in):
        label = f"[{i + 1}/{len(configs)}] {cfg.task} {cfg.method} seed={cfg.seed}"
        if done:
            log(f"{label}: already in {', '.join(map(str, [*done_in, results]))}, skipped")
            continue
        if data_dir:
            cfg = dataclasses.replace(cfg, data_dir=data_dir)
        data_key = (
            cfg.task.lower(),
            cfg.model,
            cfg.data_dir,
            cfg.n_train,
            cfg.n_dev,
            cfg.holdout,
            cfg.seed if cfg.data_seed is None else cfg.data_seed,
            cfg.max_length,
        )
        if data_key not in prepared:
            prepared.clear()  # one task's data at a time keeps memory flat
            tokenizer = load_tokenizer(cfg.model)
            prepared[data_key] = (prepare_data(cfg, cfg.validate(), tokenizer), tokenizer)
        data, tokenizer = prepared[data_key]
        rid = run_id(cfg)
        folder = latest = None
        if checkpoint_dir is not None:
            folder = Path(checkpoint_dir) / rid
            latest = Checkpointer(folder, {}).latest()
        log(f"{label}: " + (f"resuming from {latest}" if latest else "running"))
        record = run(
            cfg,
            progress=progress,
            cache_dir=cache_dir,
            data=data,
            tokenizer=tokenizer,
            checkpoint_dir=folder,
            resume=latest is not None,
        )
        record["run_id"] = rid
        append_record(results, record)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        ran += 1
        log(
            f"{label}: {record['metric']} best {record['best'][record['metric']]:.4f}, "
            f"final {record['final'][record['metric']]:.4f} ({record['wall_s']:.0f}s)"
        )
    return ran
