"""Results files, grids that resume, and reports."""

import dataclasses

import pytest

from dcs_lib import DCSError
from dcs_lib.experiments import (
    append_record,
    load_results,
    pending,
    read_grid,
    remove_stale_partial_files,
    run_cost,
    run_grid,
    run_id,
    select_runs,
    select_shard,
    teacher_group,
)
from dcs_lib.methods import RunConfig
from dcs_lib.report import choose_schedule, paired_difference, runs_frame, summary, write_report
from dcs_lib.train import cpu_supports_bf16


def fake_record(task="rte", method="dcs", seed=1, best=0.6, final=0.55):
    return {
        "task": task,
        "method": method,
        "seed": seed,
        "metric": "accuracy",
        "config": {"lam": 1.0},
        "epochs": [{"epoch": 1, "dev": {"accuracy": best}}, {"epoch": 2, "dev": {"accuracy": final}}],
        "best": {"epoch": 1, "accuracy": best},
        "final": {"epoch": 2, "accuracy": final},
        "wall_s": 1.0,
    }


def test_grid_file_expands_in_order_and_checks_keys(tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text(
        '[base]\nepochs = 2\n\n[[grid]]\ntask = ["rte", "mrpc"]\nmethod = ["vanilla", "dcs"]\nseed = 1\n\n'
        '[[grid]]\ntask = "rte"\nmethod = "dcs"\nlam = [0.0, 2.0]\n'
    )
    configs = read_grid(grid)
    assert [(c.task, c.method, c.lam) for c in configs] == [
        ("rte", "vanilla", 1.0),
        ("rte", "dcs", 1.0),
        ("mrpc", "vanilla", 1.0),
        ("mrpc", "dcs", 1.0),
        ("rte", "dcs", 0.0),
        ("rte", "dcs", 2.0),
    ]
    assert all(c.epochs == 2 for c in configs)
    grid.write_text("[[grid]]\nlamda = [1, 2]\n")
    with pytest.raises(DCSError, match="unknown setting 'lamda'"):
        read_grid(grid)
    grid.write_text("[[grid]]\nalpha = [0.5, 2.0]\n")
    with pytest.raises(DCSError, match=r"alpha must be in \[0, 1\]"):
        read_grid(grid)


@pytest.mark.parametrize(
    "text, where, message",
    [
        ('[[grid]]\nmethod = ["kd", "dcs"]\nlr = "5e-5"\n', "lr = '5e-5' ([[grid]] 1)", "must be of type float"),
        ('[base]\nepochs = 2.5\n', "epochs = 2.5 ([base])", "must be of type int, got float"),
        ('[[grid]]\nseed = 1\n\n[[grid]]\ncompile = [1]\n', "compile = 1 ([[grid]] 2)", "must be of type bool"),
        ('[[grid]]\nn_train = [100, "all"]\n', "n_train = 'all' ([[grid]] 1)", "must be of type int, got str"),
    ],
)
def test_a_grid_setting_of_the_wrong_type_names_file_table_and_key(tmp_path, text, where, message):
    grid = tmp_path / "typo.toml"
    grid.write_text(text)
    with pytest.raises(DCSError) as caught:
        read_grid(grid)
    assert str(caught.value).startswith(f"grid file {grid}: {where}: {message}")


def test_an_out_of_range_grid_setting_names_file_table_and_key(tmp_path):
    grid = tmp_path / "range.toml"
    grid.write_text('[base]\nalpha = 2.0\n\n[[grid]]\nmethod = ["kd", "dcs"]\n')
    with pytest.raises(DCSError, match=r"range.toml: alpha = 2.0 \(\[base\]\): alpha must be in \[0, 1\], got 2.0"):
        read_grid(grid)
    grid.write_text('[[grid]]\nseed = 1\n\n[[grid]]\nmethod = "dcs"\nwarmup_ratio = [0.1, 1.5]\n')
    with pytest.raises(DCSError, match=r"range.toml: warmup_ratio = 1.5 \(\[\[grid\]\] 2\): warm-up ratio"):
        read_grid(grid)
    # no single setting to blame: the run's own settings are named
    grid.write_text('[[grid]]\nmethod = "dcs"\npairs = [{epochs = 2, plain_epochs = 2, warmup_ratio = 2.0}]\n')
    with pytest.raises(DCSError, match=r"the run with method = 'dcs', epochs = 2, .* \(\[\[grid\]\] 1\): warm-up"):
        read_grid(grid)
    grid.write_text("[base]\nlr = 5\n\n[[grid]]\nseed = [1, 2]\n")  # a TOML int is a fine float
    assert [c.lr for c in read_grid(grid)] == [5, 5]


def test_run_id_ignores_where_data_lives_but_not_settings():
    assert run_id(RunConfig(data_dir="a")) == run_id(RunConfig(data_dir="b", task="RTE"))
    assert run_id(RunConfig(lam=1.0)) != run_id(RunConfig(lam=2.0))


def test_report_tables_and_paired_t_interval(tmp_path):
    records = [
        fake_record(method=m, seed=s, final=f)
        for m, s, f in [("vanilla", 1, 0.50), ("vanilla", 2, 0.60), ("dcs", 1, 0.53), ("dcs", 2, 0.62)]
    ]
    frame = runs_frame(records)
    table = summary(frame)
    dcs = table[table["method"] == "dcs"].iloc[0]
    assert dcs["final_mean"] == pytest.approx(57.5) and dcs["runs"] == 2
    paired = paired_difference(frame)
    assert paired.iloc[0]["mean_diff"] == pytest.approx(2.5) and paired.iloc[0]["n"] == 2
    assert paired.iloc[0]["ci_low"] == pytest.approx(2.5 - 6.353, abs=1e-3)  # t(0.975, 1 df) = 12.706
    paths = write_report(records, tmp_path / "report")
    [plot] = paths["plots"].values()
    assert plot.stat().st_size > 1000 and "| rte | accuracy |" in paths["summary"].read_text()


def test_shards_cover_the_grid_once_keep_teachers_together_and_balance():
    configs = [
        RunConfig(task=task, method=method, seed=seed, lam=lam)
        for task in ("rte", "mrpc", "cola")
        for seed in (1, 2, 3)
        for method in ("vanilla", "kd", "dcs")
        for lam in ((1.0, 2.0) if method == "dcs" else (1.0,))
    ]
    shards = [select_shard(configs, i, 4) for i in range(4)]
    ids = [run_id(c) for shard in shards for c in shard]
    assert sorted(ids) == sorted(run_id(c) for c in configs)  # every run in exactly one shard
    for shard in shards:  # grid order kept inside a shard
        assert [configs.index(c) for c in shard] == sorted(configs.index(c) for c in shard)
    owner = {teacher_group(c): i for i, shard in enumerate(shards) for c in shard}
    assert all(owner[teacher_group(c)] == i for i, shard in enumerate(shards) for c in shard)
    loads = [sum(run_cost(c) for c in shard) for shard in shards]
    assert max(loads) <= 1.5 * min(loads)  # 9 groups of unequal size over 4 shards
    assert select_shard(configs, 0, 1) == configs
    with pytest.raises(DCSError, match="between 1 and 4"):
        select_shard(configs, 4, 4)


def test_select_runs_keeps_grid_order_and_matches_case_and_numbers():
    configs = [
        RunConfig(task=t, method=m, lam=lam) for t in ("rte", "mrpc") for m in ("vanilla", "dcs") for lam in (1.0, 2.0)
    ]
    picked = select_runs(configs, {"task": ["RTE"], "lam": [1]})
    assert picked == [c for c in configs if c.task == "rte" and c.lam == 1.0] and len(picked) == 2
    assert select_runs(configs, {"method": ["dcs", "vanilla"]}) == configs
    assert select_runs(configs, {}) == configs
    with pytest.raises(DCSError, match="cannot select runs by 'colour'"):
        select_runs(configs, {"colour": ["red"]})


def test_choose_schedule_follows_the_fixed_rule():
    def tuning_record(lr, method, seed, curve):
        return {
            "task": "rte",
            "method": method,
            "seed": seed,
            "metric": "accuracy",
            "config": {"lr": lr},
            "epochs": [{"epoch": e, "dev": {"accuracy": a}} for e, a in enumerate(curve, start=1)],
        }

    records = [
        tuning_record(5e-5, "vanilla", 1, [0.9, 0.60, 0.62, 0.64]),
        tuning_record(5e-5, "dcs", 1, [0.9, 0.60, 0.66, 0.64]),
        tuning_record(1e-4, "vanilla", 1, [0.9, 0.50, 0.64, 0.60]),
        tuning_record(1e-4, "dcs", 1, [0.9, 0.50, 0.64, 0.68]),
    ]
    choice = choose_schedule(records, min_epochs=3)  # epoch 1's 0.9 is below the minimum
    assert (choice["lr"], choice["epochs"]) == (5e-5, 3)  # 64.0 at (5e-5, 3) ties (1e-4, 3) and (1e-4, 4)
    assert choice["score"] == pytest.approx(64.0)
    assert choice["table"].loc[1e-4, 4] == pytest.approx(64.0)
    assert choose_schedule(records, min_epochs=1)["epochs"] == 1
    with pytest.raises(ValueError, match="no run reached 5 epochs"):
        choose_schedule(records, min_epochs=5)


def test_results_from_several_files(tmp_path):
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    append_record(first, fake_record(seed=1))
    append_record(second, fake_record(seed=2))
    assert [r["seed"] for r in load_results([first, second])] == [1, 2]


def test_runs_in_other_results_files_count_as_done(tmp_path):
    configs = [RunConfig(seed=seed) for seed in (1, 2, 3)]
    earlier = tmp_path / "earlier.jsonl"
    append_record(earlier, {**fake_record(seed=2), "run_id": run_id(configs[1])})
    flags = [done for _, _, done in pending(configs, tmp_path / "new.jsonl", [earlier])]
    assert flags == [False, True, False]
    assert [done for _, _, done in pending(configs, tmp_path / "new.jsonl")] == [False, False, False]


def test_a_grid_sweeps_what_a_killed_writer_left_and_nothing_else(tmp_path):
    """Half-written files older than an hour go; a fresh one (another process writing now) and the records stay."""
    import os
    import time

    results, cache = tmp_path / "runs.jsonl", tmp_path / "cache"
    cache.mkdir()
    config = RunConfig(seed=1)
    append_record(results, {**fake_record(seed=1), "run_id": run_id(config)})
    old_record, old_teacher = tmp_path / ".runs.jsonl.k1x2.tmp", cache / ".teacher-rte-ab.safetensors.q9.tmp"
    fresh, other = cache / ".teacher-rte-cd.safetensors.z3.tmp", tmp_path / ".notes.txt.tmp"
    for path in (old_record, old_teacher, fresh, other):
        path.write_bytes(b"half")
    an_hour_ago = time.time() - 3700
    for path in (old_record, old_teacher, other):
        os.utime(path, (an_hour_ago, an_hour_ago))
    said = []
    assert run_grid([config], results, cache_dir=cache, log=said.append) == 0  # its one run is done: nothing trains
    assert not old_record.exists() and not old_teacher.exists()
    assert fresh.exists() and other.exists()  # too new to be stale; not a file of this results file
    assert sum("half-written" in line for line in said) == 2
    assert len(load_results(results)) == 1
    assert remove_stale_partial_files(tmp_path / "missing") == []


def test_a_run_recorded_in_another_block_is_not_done_here(tmp_path):
    """A run id leaves the device out: only a record of this block (device, precision, torch) stands in for a run."""
    import torch

    cfg = RunConfig(seed=1, device="cpu")  # amp "auto": float32 on a CPU; the device is not part of the run id
    results = tmp_path / "runs.jsonl"
    record = {**fake_record(seed=1), "run_id": run_id(cfg), "versions": {"torch": torch.__version__}}
    append_record(results, {**record, "device": "cuda (NVIDIA H200)", "precision": "bfloat16"})
    append_record(results, {**record, "device": "cuda (NVIDIA H200)", "config": {"amp": "auto"}})  # no precision yet
    append_record(results, {**record, "device": "cpu", "precision": "bfloat16"})
    append_record(results, {**record, "device": "cpu x2 (DDP)", "precision": "float32"})
    append_record(results, {**record, "device": "cpu", "precision": "float32", "versions": {"torch": "1.0"}})
    assert [done for _, _, done in pending([cfg], results)] == [False]
    append_record(results, {**record, "device": "cpu", "config": {"amp": "auto"}})  # before precision was recorded
    assert [done for _, _, done in pending([cfg], results)] == [True]
    if cpu_supports_bf16():
        bf16 = dataclasses.replace(cfg, amp="bf16")  # asked for by name: bf16 on this CPU too (another run id)
        append_record(results, {**record, "run_id": run_id(bf16), "device": "cpu", "precision": "bfloat16"})
        assert [done for _, _, done in pending([bf16], results)] == [True]
    legacy = tmp_path / "legacy.jsonl"  # records that do not say where they ran count wherever the grid runs
    append_record(legacy, {**fake_record(seed=1), "run_id": run_id(cfg)})
    assert [done for _, _, done in pending([cfg], legacy)] == [True]