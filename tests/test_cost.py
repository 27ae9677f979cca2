from __future__ import annotations

import random

import pytest

from scalesearch.arch import load_base, scale
from scalesearch.arch._cost import conv_out
from scalesearch.arch import fvcore_count, layer_costs, network_cost, stage_costs


def test_macs_equal_reference(reference):
    for row in reference:
        spec = scale(load_base(row["name"]))
        c = network_cost(spec)
        assert c.macs == int(row["macs_conv_fc"]), row["name"]
        assert c.params == int(row["params_exact"]), row["name"]


@pytest.mark.parametrize("name", ["b0", "b3", "b7"])
def test_fvcore_agrees_on_presets(reference, name):
    row = next(r for r in reference if r["name"] == name)
    spec = scale(load_base(name))
    m = fvcore_count(spec)
    assert m["conv_linear_macs"] == network_cost(spec).macs
    assert m["params"] == int(row["params_exact"])
    assert m["total_macs"] == int(row["fvcore_total"])  # fvcore's total adds BatchNorm and pooling


@pytest.mark.parametrize("seed", range(20))
def test_fvcore_agrees_on_random_networks(seed):
    rng = random.Random(1000 + seed)
    base = load_base(rng.choice(["b0", "b2", "tiny-mbconv"]))
    spec = scale(base, rng.uniform(0.3, 1.6), rng.uniform(0.3, 1.6), rng.randint(8, 97))
    classes, channels = rng.randint(1, 300), rng.randint(1, 4)
    m = fvcore_count(spec, num_classes=classes, in_channels=channels)
    c = network_cost(spec, num_classes=classes, in_channels=channels)
    assert (c.macs, c.params) == (m["conv_linear_macs"], m["params"])


def test_odd_resolutions_use_real_output_sizes():
    assert [conv_out(s, 3, 2) for s in (7, 8, 9, 225)] == [4, 4, 5, 113]
    spec = scale(load_base("b0"))
    assert network_cost(spec, 225).macs > network_cost(spec, 224).macs


def test_activations_count_conv_and_linear_outputs():
    spec = scale(load_base("b0"))
    rows = dict(layer_costs(spec, 224))
    assert rows["stem"].acts == 32 * 112 * 112
    assert rows["classifier"].acts == 1000
    assert sum(c.acts for c in stage_costs(spec).values()) == network_cost(spec).acts
