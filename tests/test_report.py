"""Statistics a reviewer accepts: t-intervals, permutation p-values, power, and blocks never pooled."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from dcs_lib import DCSError
from dcs_lib.report import (
    block_of,
    comparisons,
    holm,
    markdown,
    min_detectable_effect,
    paired_difference,
    paired_stats,
    permutation_p,
    require_one_block,
    runs_frame,
    write_report,
)

DIFFS = [
    np.array([0.5, -1.2, 0.3, 2.0, -0.4, 1.1, 0.7]),
    np.array([1.0, 2.0, 1.5, 0.5, 2.5]),
    np.array([-0.3, 0.2, -1.4, 0.9, -0.1, -0.8, 0.6, -0.5, 0.05, -1.1]),
]


@pytest.mark.parametrize("diff", DIFFS)
def test_the_t_interval_is_scipys(diff):
    expected = stats.ttest_1samp(diff, 0.0).confidence_interval(0.95)
    got = paired_stats(diff)
    assert got["n"] == len(diff)
    assert got["ci_low"] == pytest.approx(expected.low) and got["ci_high"] == pytest.approx(expected.high)
    assert "boot_low" not in got  # fewer than 20 pairs: no bootstrap


@pytest.mark.parametrize("diff", DIFFS)
def test_the_permutation_p_value_is_scipys_exact_sign_flip_test(diff):
    expected = stats.permutation_test(
        (diff,), np.mean, permutation_type="samples", n_resamples=np.inf, alternative="two-sided"
    ).pvalue
    assert permutation_p(diff) == pytest.approx(expected)


def test_all_same_sign_over_five_pairs_cannot_go_below_one_in_sixteen():
    assert permutation_p(np.array([1.0, 2.0, 1.5, 0.5, 2.5])) == pytest.approx(2 / 32)


@pytest.mark.parametrize("n", [2, 3, 5, 10, 30])
def test_the_minimum_detectable_effect_has_80_percent_power(n):
    sd = 1.7
    effect = min_detectable_effect(sd, n)
    crit = stats.t.ppf(0.975, n - 1)
    nc = effect / sd * np.sqrt(n)
    power = stats.nct.sf(crit, n - 1, nc) + stats.nct.cdf(-crit, n - 1, nc)
    if n == 2:  # scipy's nct.cdf is NaN that far out in the tail; by symmetry the lower tail is the upper tail of -T
        power = stats.nct.sf(crit, n - 1, nc) + stats.nct.sf(crit, n - 1, -nc)
    assert power == pytest.approx(0.8, abs=1e-6)
    # and by simulation, roughly
    rng = np.random.default_rng(0)
    samples = rng.normal(effect, sd, size=(20_000, n))
    t = samples.mean(axis=1) / (samples.std(axis=1, ddof=1) / np.sqrt(n))
    assert np.mean(np.abs(t) > crit) == pytest.approx(0.8, abs=0.02)


def test_a_bootstrap_only_from_twenty_pairs():
    diff = np.random.default_rng(1).normal(1.0, 1.0, 25)
    got = paired_stats(diff)
    assert got["boot_low"] < got["mean_diff"] < got["boot_high"]


def test_a_reading_needs_the_interval_and_the_adjusted_p():
    from dcs_lib.report import reading

    row = {"ci_low": 0.1, "ci_high": 0.9, "p_perm": 0.002, "p_holm": 0.012, "mde80": 0.4}
    assert reading(row) == "gain"
    assert reading(row | {"p_holm": 0.06}) == "no difference detected (MDE 0.40)"  # Holm wins over p_perm
    assert reading(row | {"ci_low": -0.9, "ci_high": -0.1}) == "loss"
    assert reading(row | {"ci_low": -0.1}) == "no difference detected (MDE 0.40)"
    assert reading(row | {"p_holm": float("nan")}) == "gain"  # no family: the permutation p itself
    assert reading(row | {"ci_low": -0.1, "mde80": float("nan")}) == "no difference detected (no MDE: too few pairs, or no spread)"
    # five pairs: the exact sign-flip p is at least 2 / 32, whatever the t-test's MDE says
    assert reading(row | {"ci_low": -0.1, "n": 5}) == "no difference detected (5 pairs: p cannot fall below 0.0625)"
    assert reading(row | {"ci_low": -0.1, "n": 1}) == "no difference detected (1 pair: p cannot fall below 1)"
    assert reading(row | {"ci_low": -0.1, "n": 6}) == "no difference detected (MDE 0.40)"


def test_holm_matches_the_step_down_rule():
    assert holm([0.01, 0.04, 0.03, 0.2]).tolist() == pytest.approx([0.04, 0.09, 0.09, 0.2])
    # two members of a family of six not measured yet: as if their p were 1
    assert holm([0.01, 0.04, 0.03, 0.2], family_size=6).tolist() == pytest.approx([0.06, 0.16, 0.15, 0.6])
    assert holm([0.01, 0.04, 0.03, 0.2], family_size=6).tolist() == pytest.approx(holm([0.01, 0.04, 0.03, 0.2, 1, 1])[:4])


def record(method, seed, final, device="cpu", precision="float32", torch="2.13.0", teacher=None, n_train=None):
    config = {"n_train": n_train, "teacher_epochs": 2, "teacher_folds": 1, "teacher_seed": None, "amp": "auto"}
    config.update(teacher or {})
    return {
        "task": "sst2",
        "method": method,
        "seed": seed,
        "metric": "accuracy",
        "config": config,
        "epochs": [{"epoch": 1, "dev": {"accuracy": final}}],
        "best": {"epoch": 1, "accuracy": final},
        "final": {"epoch": 1, "accuracy": final},
        "teacher": {"final": {"accuracy": 0.8}} if method in ("kd", "dcs") else None,
        "device": device,
        "precision": precision,
        "versions": {"torch": torch},
    }


def test_runs_of_different_blocks_are_never_paired():
    records = [record("vanilla", s, 0.80) for s in (1, 2, 3)] + [
        record("dcs", s, 0.82, device="cuda (NVIDIA H200)", precision="bfloat16") for s in (1, 2, 3)
    ]
    frame = runs_frame(records)
    assert frame["block"].nunique() == 2
    assert paired_difference(frame).empty  # dcs ran on the GPU, vanilla on the CPU: nothing to pair
    with pytest.raises(DCSError, match="2 device/precision/version blocks.*sst2 vanilla seed 1"):
        require_one_block(frame)
    old_gpu = {"device": "cuda (NVIDIA H200)", "config": {"amp": "auto"}, "versions": {"torch": "2.11.0"}}
    assert block_of(old_gpu) == "cuda (NVIDIA H200), bfloat16, torch 2.11.0"  # before records named it


def test_comparisons_pair_kd_and_dcs_with_the_same_teacher(tmp_path):
    peer = {"teacher_seed": 9, "teacher_epochs": 5}
    records = []
    for s in range(1, 6):
        records += [
            record("vanilla", s, 0.80 + 0.001 * s),
            record("kd", s, 0.79 + 0.001 * s),
            record("dcs", s, 0.795 + 0.002 * s),
            record("kd", s, 0.81, teacher=peer),
            record("dcs", s, 0.815 + 0.001 * s, teacher=peer),
        ]
    table = comparisons(runs_frame(records, ("n_train",)))
    rows = {(r.comparison, r.teacher): r for r in table.itertuples()}
    from dcs_lib.report import reading

    assert set(rows) == {
        ("dcs - vanilla", "own seed (2 ep)"), ("dcs - vanilla", "peer (5 ep)"),
        ("dcs - kd", "own seed (2 ep)"), ("dcs - kd", "peer (5 ep)"),
        ("kd - vanilla", "own seed (2 ep)"), ("kd - vanilla", "peer (5 ep)"),
    }  # fmt: skip
    assert rows[("dcs - kd", "peer (5 ep)")].mean_diff == pytest.approx(0.5 + 0.1 * 3)
    assert rows[("dcs - vanilla", "own seed (2 ep)")].n == 5
    assert not np.isnan(rows[("dcs - vanilla", "peer (5 ep)")].p_holm)
    for comparison in ("dcs - vanilla", "dcs - kd"):  # each its own family of two
        p = [rows[(comparison, t)].p_perm for t in ("own seed (2 ep)", "peer (5 ep)")]
        assert [rows[(comparison, t)].p_holm for t in ("own seed (2 ep)", "peer (5 ep)")] == pytest.approx(holm(p))
    assert np.isnan(rows[("kd - vanilla", "peer (5 ep)")].p_holm)  # descriptive
    # DCS ahead of KD by 0.6-1.0 points on every seed, the interval clear of 0, yet 5 pairs cannot
    # give p below 2 / 2^5: the protocol's words say so
    assert rows[("dcs - kd", "peer (5 ep)")].ci_low > 0 and rows[("dcs - kd", "peer (5 ep)")].p_perm == pytest.approx(0.0625, abs=1e-3)
    assert rows[("dcs - kd", "peer (5 ep)")].reading == "no difference detected (5 pairs: p cannot fall below 0.0625)"
    tested = table["comparison"] != "kd - vanilla"
    assert list(table.loc[tested, "reading"]) == [reading(row) for _, row in table[tested].iterrows()]
    unplanned = {"gain": "interval above 0, unadjusted p", "loss": "interval below 0, unadjusted p"}
    expected = [f"descriptive: {unplanned.get(reading(row), reading(row))}" for _, row in table[~tested].iterrows()]
    assert list(table.loc[~tested, "reading"]) == expected
    with pytest.raises(DCSError, match="several dcs runs share a seed.*--by"):
        paired_difference(runs_frame(records))  # two teachers per seed: say which
    paths = write_report(records, tmp_path)
    text = paths["summary"].read_text()
    assert "device, precision, torch: cpu, float32, torch 2.13.0" in text and "t-interval" in text
    assert "Teachers (mean over the DCS runs)" in text and (tmp_path / "teachers.csv").is_file()


def test_the_when_figure_pairs_each_dcs_run_with_its_seeds_vanilla(tmp_path):
    from dcs_lib.report import plot_when, when_frame

    records = []
    for s in range(1, 5):
        vanilla = record("vanilla", s, 0.80 + 0.01 * s)
        dcs = record("dcs", s, 0.81 + 0.01 * s)
        dcs["teacher"] = {"final": {"accuracy": 0.75 + 0.02 * s}}
        records += [vanilla, dcs, record("kd", s, 0.805 + 0.01 * s)]
    frame = runs_frame(records, ("n_train",))
    pairs = when_frame(frame)
    assert len(pairs) == 4
    assert pairs["dcs_gain"].tolist() == pytest.approx([1.0] * 4)
    assert pairs["kd_gain"].tolist() == pytest.approx([0.5] * 4)
    assert pairs["teacher_gap"].tolist() == pytest.approx([100 * (0.75 + 0.02 * s - 0.80 - 0.01 * s) for s in range(1, 5)])
    path, rho = plot_when(frame, tmp_path / "when.png")
    assert path.stat().st_size > 1000 and rho["pairs"].tolist() == [4]
    mixed = records + [record("vanilla", 9, 0.8, device="cuda (NVIDIA H200)", precision="bfloat16")]
    with pytest.raises(DCSError, match="blocks"):
        plot_when(runs_frame(mixed, ("n_train",)), tmp_path / "no.png")


def test_the_when_correlation_is_set_beside_what_the_shared_vanilla_run_gives_alone():
    """DCS and the teacher score independently of each other; only vanilla's own noise links the two axes."""
    from dcs_lib.report import shared_term_rho, when_frame

    rng = np.random.default_rng(3)
    records = []
    for s in range(1, 21):
        dcs = record("dcs", s, 0.85 + rng.normal(0, 0.005))
        dcs["teacher"] = {"final": {"accuracy": 0.84 + rng.normal(0, 0.005)}}
        records += [record("vanilla", s, 0.85 + rng.normal(0, 0.01)), dcs]
    pairs = when_frame(runs_frame(records, ("n_train",)))
    rho = stats.spearmanr(pairs["teacher_gap"], pairs["dcs_gain"]).statistic
    shuffled, above = shared_term_rho(pairs)
    assert rho > 0.4 and shuffled > 0.4  # positive by construction, not because the teacher matters
    assert above > 0.05
    # a real link: DCS gains what the teacher has over vanilla; the shuffles rarely reach it
    for r in records:
        if r["method"] == "dcs":
            vanilla = next(v for v in records if v["method"] == "vanilla" and v["seed"] == r["seed"])
            gap = r["teacher"]["final"]["accuracy"] - vanilla["final"]["accuracy"]
            r["final"]["accuracy"] = vanilla["final"]["accuracy"] + gap + rng.normal(0, 0.0005)
    assert shared_term_rho(when_frame(runs_frame(records, ("n_train",))))[1] < 0.05


def test_an_undefined_when_correlation_is_not_set_beside_shuffles():
    """DCS gains the same on every seed: no ρ, and no share of shuffles "above" it either."""
    from dcs_lib.report import shared_term_rho, when_frame

    records = []
    for s, score in zip((1, 2, 3), (0.5, 0.75, 0.25)):
        dcs = record("dcs", s, score + 0.25)
        dcs["teacher"] = {"final": {"accuracy": 0.6 + 0.01 * s}}
        records += [record("vanilla", s, score), dcs]
    shuffled, above = shared_term_rho(when_frame(runs_frame(records, ("n_train",))))
    assert np.isnan(shuffled) and np.isnan(above)


def test_holm_is_taken_over_the_named_family_only():
    records = []
    for n_train in (4000, 1000):
        for s in range(1, 6):
            records += [record("vanilla", s, 0.80, n_train=n_train), record("dcs", s, 0.80 + 0.002 * s, n_train=n_train)]
    table = comparisons(runs_frame(records, ("n_train",)), family=[("sst2", 4000)])
    rows = table[table["comparison"] == "dcs - vanilla"].set_index("n_train")
    assert rows.loc[4000, "p_holm"] == pytest.approx(rows.loc[4000, "p_perm"])  # a family of one
    assert np.isnan(rows.loc[1000, "p_holm"])
    assert rows.loc[1000, "reading"].startswith("descriptive: ") and not rows.loc[4000, "reading"].startswith("desc")
    own = rows["teacher"].iloc[0]  # the records' teacher: trained from the student's own seed
    both = comparisons(runs_frame(records, ("n_train",)), family=[("sst2", 4000, own), ("sst2", 1000, own)])
    rows = both[both["comparison"] == "dcs - vanilla"].set_index("n_train")
    assert rows["p_holm"].tolist() == pytest.approx(holm(rows["p_perm"]).tolist())  # a family of two, named by teacher
    assert rows["p_holm"].tolist() != pytest.approx(rows["p_perm"].tolist())
    none = comparisons(runs_frame(records, ("n_train",)), family=[("sst2", 4000, "peer (5 ep)")])
    assert none["p_holm"].isna().all()  # that teacher has no row here
    # a family of three named members, one without runs yet: it counts as p = 1
    partial = comparisons(runs_frame(records, ("n_train",)), family=[*[("sst2", n, own) for n in (4000, 1000)],
                                                                       ("mrpc", None, own)])
    rows = partial[partial["comparison"] == "dcs - vanilla"]
    assert rows["p_holm"].tolist() == pytest.approx(holm([*rows["p_perm"], 1.0])[:2].tolist())
    assert (rows["p_holm"] >= both[both["comparison"] == "dcs - vanilla"]["p_holm"]).all()


def test_a_full_training_set_is_a_member_of_the_family_too():
    """MRPC in full (``n_train`` None) beside a subset of SST-2: both cells in the family, each size as it is."""
    records = []
    for s in range(1, 6):
        for task, n_train in (("sst2", 4000), ("mrpc", None)):
            vanilla, dcs = record("vanilla", s, 0.80, n_train=n_train), record("dcs", s, 0.80 + 0.002 * s, n_train=n_train)
            for r in (vanilla, dcs):
                r["task"] = task
            records += [vanilla, dcs]
    frame = runs_frame(records, ("n_train",))
    own = frame.loc[frame["method"] == "dcs", "teacher"].iloc[0]
    table = comparisons(frame, family=[("sst2", 4000, own), ("mrpc", None, own)])
    rows = table[table["comparison"] == "dcs - vanilla"].set_index("task")
    assert rows["p_holm"].notna().all(), rows
    assert rows["p_holm"].tolist() == pytest.approx(holm(rows["p_perm"]).tolist())
    assert "| mrpc | full | dcs - vanilla |" in markdown(table) and "| sst2 | 4000 | dcs - vanilla |" in markdown(table)


def test_a_teacher_of_another_model_is_named_whatever_its_seed():
    from dcs_lib.report import teacher_label

    def labelled(seed, **config):
        base = {"model": "bundled-minilm", "teacher_epochs": 5, "teacher_seed": 1}
        return teacher_label({"method": "dcs", "seed": seed, "config": base | config})

    mpnet = "models/all-mpnet-base-v2"
    assert labelled(1, teacher_model=mpnet) == labelled(7, teacher_model=mpnet) == "all-mpnet-base-v2 (5 ep)"
    assert labelled(1) == "own seed (5 ep)" and labelled(7) == "peer (5 ep)"
    assert labelled(3, teacher_folds=2) == "out-of-fold (2 folds, 5 ep)"
    assert labelled(3, teacher_model=mpnet, teacher_folds=2) == "all-mpnet-base-v2 (2 folds, 5 ep)"


def test_teacher_diagnostics_average_what_each_teacher_knew_and_what_dcs_did():
    from dcs_lib.report import teacher_diagnostics

    peer = {"teacher_seed": 9, "teacher_epochs": 5}
    records = [record("vanilla", 1, 0.80)]
    for s, (discordant, ess) in enumerate([(0.10, 0.9), (0.20, 0.7)], start=1):
        for teacher, train in ((None, 0.93), (peer, 0.99)):
            run = record("dcs", s, 0.8, teacher=teacher)
            run["teacher"]["train"] = {"accuracy": train}
            run["epochs"] = [
                {"epoch": 1, "dev": {"accuracy": 0.8}, "weights": {"discordant": discordant, "ess": ess}},
                {"epoch": 2, "dev": {"accuracy": 0.8}, "weights": {"ess": 0.5}},  # the last: trains nothing
            ]
            records.append(run)
    table = teacher_diagnostics(records).set_index("teacher")
    assert list(table.index) == ["own seed (2 ep)", "peer (5 ep)"]
    assert table["runs"].tolist() == [2, 2]
    assert table.loc["peer (5 ep)", "teacher_train"] == pytest.approx(99.0)
    assert table.loc["own seed (2 ep)", "teacher_dev"] == pytest.approx(80.0)
    assert table["discordant_1"].tolist() == pytest.approx([15.0, 15.0])
    assert table["ess_1"].tolist() == pytest.approx([0.8, 0.8])
    assert "ess_2" not in table and "discordant_2" not in table
    assert teacher_diagnostics([record("vanilla", 1, 0.8)]).empty


def test_a_comparison_no_test_was_planned_for_shows_no_gain_only_its_interval():
    """KD − vanilla is outside Holm's families: clear of 0 over six seeds, yet not called a gain."""
    records = []
    for s in range(1, 7):
        records += [record("vanilla", s, 0.80 + 0.001 * s), record("kd", s, 0.81 + 0.002 * s),
                    record("dcs", s, 0.80 + 0.001 * s + 0.0001 * (-1) ** s)]  # fmt: skip
    table = comparisons(runs_frame(records, ("n_train",))).set_index("comparison")
    assert table.loc["kd - vanilla", "ci_low"] > 0 and table.loc["kd - vanilla", "p_perm"] == pytest.approx(2 / 64)
    assert table.loc["kd - vanilla", "reading"] == "descriptive: interval above 0, unadjusted p"
    assert table.loc["dcs - kd", "reading"] == "loss"  # a planned test keeps the protocol's word


GPU = {"device": "cuda (NVIDIA H200)", "precision": "bfloat16"}
CPU_BLOCK = "cpu, float32, torch 2.13.0"
GPU_BLOCK = "cuda (NVIDIA H200), bfloat16, torch 2.13.0"


def two_block_records() -> list[dict]:
    """Vanilla and DCS, seeds 1-3, once on the CPU (DCS +1, +2, +3 points) and once on a GPU (-2, -4, -6).

    Pooled, every seed would hold two runs of each method and nothing could be paired; paired
    across blocks, the differences would be neither 2 nor -4 points on average.
    """
    records = []
    for s in (1, 2, 3):
        cpu_vanilla, gpu_vanilla = (0.80, 0.82, 0.81)[s - 1], (0.90, 0.88, 0.89)[s - 1]
        records += [
            record("vanilla", s, cpu_vanilla),
            record("dcs", s, cpu_vanilla + 0.01 * s),
            record("vanilla", s, gpu_vanilla, **GPU),
            record("dcs", s, gpu_vanilla - 0.02 * s, **GPU),
        ]
    return records


def test_a_report_of_two_blocks_gives_each_its_own_section_pairs_and_plot(tmp_path):
    import pandas as pd

    paths = write_report(two_block_records(), tmp_path)
    text = paths["summary"].read_text()
    assert "Paired differences skipped" not in text
    sections = text.split("## Block ")[1:]
    assert [s.splitlines()[0] for s in sections] == [
        f"1: device, precision, torch: {CPU_BLOCK}",
        f"2: device, precision, torch: {GPU_BLOCK}",
    ]
    row = "| sst2 | full | dcs - vanilla | own seed (2 ep) | 3 | {} |"
    for section, mean, other in ((sections[0], "2.0", "-4.0"), (sections[1], "-4.0", "2.0")):
        assert section.count(row.format(mean)) == 2  # last and best epoch
        assert row.format(other) not in section
        assert section.count("| sst2 | accuracy | full | ") == 2 and "| 6 |" not in section  # 3 runs a method

    summary = pd.read_csv(tmp_path / "summary.csv")
    assert sorted(zip(summary["block"], summary["method"], summary["runs"])) == [
        (CPU_BLOCK, "dcs", 3), (CPU_BLOCK, "vanilla", 3), (GPU_BLOCK, "dcs", 3), (GPU_BLOCK, "vanilla", 3),
    ]  # fmt: skip
    paired = pd.read_csv(tmp_path / "paired.csv")
    assert set(paired["comparison"]) == {"dcs - vanilla"} and (paired["n"] == 3).all()
    assert paired.groupby("block")["mean_diff"].agg(["min", "max"]).to_dict("index") == {
        CPU_BLOCK: {"min": pytest.approx(2.0), "max": pytest.approx(2.0)},
        GPU_BLOCK: {"min": pytest.approx(-4.0), "max": pytest.approx(-4.0)},
    }

    plots = paths["plots"]
    assert plots[CPU_BLOCK] == tmp_path / "summary-1.png" and plots[GPU_BLOCK] == tmp_path / "summary-2.png"
    assert sorted(p.name for p in tmp_path.glob("summary-*.png")) == ["summary-1.png", "summary-2.png"]
    assert all(plots[block].stat().st_size > 1000 for block in (CPU_BLOCK, GPU_BLOCK))


def test_spearman_is_scipys_and_nan_without_a_warning_where_an_axis_is_constant():
    """A panel whose runs share one teacher (addendum A1's) has no ρ against the teacher's dev score: NaN, quietly."""
    import warnings

    import numpy as np
    from scipy import stats

    from dcs_lib.report import spearman

    x, y = [0.1, 0.4, 0.3, 0.9, 0.5], [1.0, 0.2, 0.5, 0.7, 0.1]
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scipy's ConstantInputWarning would fail here
        assert np.isnan(spearman([84.2] * 5, y)) and np.isnan(spearman(x, [0.0] * 5)) and np.isnan(spearman([1.0], [2.0]))
