"""Compare's members: single-dimension networks matched to the compound member's measured MACs, and the paired statistics."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from scalesearch.arch import load_base
from scalesearch.comparison._stats import interval, paired, seeds_to_resolve
from scalesearch.errors import ScaleSearchError
from scalesearch.space import SINGLE, alone, family_members, interaction_members, target_macs
from scalesearch.stats import t_quantile

PAPER = (1.2, 1.1, 1.15)
B0 = load_base("b0")


@pytest.fixture(scope="module")
def members():
    return family_members(B0, PAPER, phi_max=2)


def test_phi0_is_the_base_once_and_every_single_family_has_each_phi(members):
    assert [(m.family, m.phi) for m in members if m.phi == 0] == [("compound", 0)]
    assert members[0].candidate.key == (1.0, 1.0, 1.0)
    for family in SINGLE:
        assert [m.phi for m in members if m.family == family] == [1, 2]


def test_the_compound_member_costs_its_measured_not_its_nominal_macs(members):
    one = next(m for m in members if m.family == "compound" and m.phi == 1)
    assert one.macs / members[0].macs == pytest.approx(2.57, abs=0.01)  # nominal 1.92, doubling would say 2


def test_single_members_cost_what_compound_costs_within_tolerance(members):
    for m in members:
        assert abs(m.ratio - 1) <= 0.05, m
        assert not m.flagged(0.05)
        target = next(c for c in members if c.family == "compound" and c.phi == m.phi)
        assert m.ratio == pytest.approx(m.macs / target.macs)


@pytest.mark.parametrize("family", SINGLE)
def test_no_multiplier_on_a_fine_scan_matches_closer(members, family):
    """The bisection finds the nearest network: a brute-force scan at 0.001 steps finds none nearer."""
    for m in (m for m in members if m.family == family):
        target = next(c for c in members if c.family == "compound" and c.phi == m.phi).macs
        scan = np.arange(1.0, 3.0, 0.001)
        best = min(abs(math.log(target_macs(B0, alone(family, x)) / target)) for x in scan)
        assert abs(math.log(m.ratio)) <= best + 1e-12


def test_multipliers_are_tidy_and_grow_with_phi(members):
    for family in SINGLE:
        chosen = [m.multiplier for m in members if m.family == family]
        assert chosen == sorted(chosen) and chosen[0] > 1
        assert all(round(x, 4) == x for x in chosen)
    width_1 = next(m for m in members if m.family == "width" and m.phi == 1)
    assert len(f"{width_1.multiplier:g}") <= 4  # 1.65, not 1.6487: the shortest multiplier building that network
    assert [m.macs for m in members if m.family == "compound"] == sorted(m.macs for m in members if m.family == "compound")


def test_a_mismatch_beyond_the_tolerance_is_flagged(members):
    m = next(m for m in members if m.family == "resolution" and m.phi == 1)  # side rounding: 0.957
    assert m.flagged(0.01) and not m.flagged(0.05)


def test_a_family_that_cannot_reach_the_cost_is_one_error():
    with pytest.raises(ScaleSearchError, match="depth scaling alone cannot reach"):
        family_members(B0, PAPER, phi_max=6, families=("depth",))


def test_interaction_curves_start_from_fixed_depth_and_side(members):
    curves = interaction_members(B0, PAPER, phi_max=2)
    settings = sorted({m.setting for m in curves})
    assert settings == [(1.0, 1.0), (1.44, 1.0), (1.44, 1.3225)]
    plain = [m.candidate for m in curves if m.setting == (1.0, 1.0)]
    assert plain[1:] == [m.candidate for m in members if m.family == "width"]  # the width family itself
    for s in settings:
        curve = [m for m in curves if m.setting == s]
        assert curve[0].ratio == 1 and [m.macs for m in curve] == sorted(m.macs for m in curve)
        assert {(m.candidate.alpha, m.candidate.gamma) for m in curve} == {s}


# ------------------------------------------------------------ statistics

def test_paired_differences_decide_on_the_interval():
    seeds = [0, 1, 2, 3]
    compound = pd.Series([0.50, 0.60, 0.55, 0.52], index=seeds)
    assert paired(compound + [0.05, 0.06, 0.05, 0.07], compound).verdict == "single better"
    assert paired(compound - [0.05, 0.06, 0.05, 0.07], compound).verdict == "compound better"
    mixed = paired(compound + [0.05, -0.06, 0.02, -0.01], compound)
    assert mixed.verdict == "not resolved" and mixed.low < 0 < mixed.high
    assert mixed.seeds_needed > 4


def test_pairing_removes_the_seed_effect_that_unpaired_means_keep():
    """A seed that is easy for everyone moves both; the paired interval sees only the constant gap."""
    easy = pd.Series([0.1, 0.5, 0.9, 0.3], index=[0, 1, 2, 3])
    d = paired(easy + 0.02 + pd.Series([0.001, -0.001, 0.0, 0.0005], index=easy.index), easy)
    assert d.verdict == "single better"
    a, b = interval(easy + 0.02), interval(easy)
    assert a.low < b.high  # the unpaired intervals overlap


def test_only_common_seeds_pair_and_one_pair_is_not_resolved():
    single = pd.Series([0.9, 0.8], index=[0, 5])
    compound = pd.Series([0.1, 0.2, 0.3], index=[0, 1, 2])
    d = paired(single, compound)
    assert d.pairs == 1 and d.mean == pytest.approx(0.8) and d.verdict == "not resolved" and math.isnan(d.low)
    assert math.isnan(d.seeds_needed)


def test_mean_interval_is_student_t():
    x = pd.Series([1.0, 2.0, 4.0])
    i = interval(x)
    half = t_quantile(2) * x.std(ddof=1) / math.sqrt(3)
    assert (i.low, i.high) == pytest.approx((x.mean() - half, x.mean() + half))
    assert math.isnan(interval(x[:1]).low)


def test_seeds_to_resolve_is_the_first_count_whose_interval_excludes_zero():
    k = seeds_to_resolve(0.01, 0.02, 3)
    assert t_quantile(k - 1) * 0.02 / math.sqrt(k) < 0.01 <= t_quantile(k - 2) * 0.02 / math.sqrt(k - 1)
    assert seeds_to_resolve(0.0, 0.02, 3) == math.inf


def test_later_rounds_go_to_the_comparisons_not_settled_fewest_pairs_first():
    from types import SimpleNamespace

    from scalesearch.comparison._driver import _open
    from scalesearch.space import Candidate, Member

    members = [Member(family, phi, Candidate(*c), 1, 1.0) for family, phi, c in (
        ("compound", 1, (1.2, 1.1, 1.15)), ("width", 1, (1, 1.65, 1)), ("depth", 1, (2.3, 1, 1)),
        ("resolution", 1, (1, 1, 1.57)), ("compound", 2, (1.44, 1.21, 1.3225)), ("width", 2, (1, 2.223, 1)))]
    key = {(x.family, x.phi): x.candidate.key for x in members}
    base = [0.5, 0.6, 0.7, 0.8]
    gaps = {("width", 1): [0.050, 0.051, 0.052, 0.053],  # resolved on 4 pairs: settled
            ("depth", 1): [0.02, -0.03, 0.01],  # not resolved, 3 pairs
            ("resolution", 1): [0.02, -0.03],  # not resolved, 2 pairs
            ("width", 2): [0.0500, 0.0501]}  # resolved, but on 2 pairs only
    rows = [(key[m], s, v) for m in (("compound", 1), ("compound", 2)) for s, v in enumerate(base)]
    rows += [(key[m], s, base[s] + g) for m, gap in gaps.items() for s, g in enumerate(gap)]
    table = pd.DataFrame(rows, columns=["key", "seed", "score"]).assign(acc=0.5).set_index(["key", "seed"]).sort_index()
    done = {k: set(table.loc[k].index) for k in key.values()}
    plan = SimpleNamespace(members=members, space=SimpleNamespace(proxy=SimpleNamespace(max_seeds=3)))
    assert paired(table.loc[key["width", 2], "score"], table.loc[key["compound", 2], "score"]).verdict == "single better"
    ref1, ref2 = key["compound", 1], key["compound", 2]
    assert _open(plan, table, done) == [(key["resolution", 1], ref1), (key["width", 2], ref2)]  # depth: 3 (max) pairs
    plan.space.proxy.max_seeds = 8
    assert _open(plan, table, done) == [(key["resolution", 1], ref1), (key["width", 2], ref2), (key["depth", 1], ref1)]
