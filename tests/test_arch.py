from __future__ import annotations

from dataclasses import replace

import pytest

from scalesearch.arch import decode_block, encode_block, known_bases, load_base, round_filters, round_repeats, scale
from scalesearch.errors import ScaleSearchError
from scalesearch.arch import build

B0_STRINGS = [
    "r1_k3_s11_e1_i32_o16_se0.25", "r2_k3_s22_e6_i16_o24_se0.25", "r2_k5_s22_e6_i24_o40_se0.25",
    "r3_k3_s22_e6_i40_o80_se0.25", "r3_k5_s11_e6_i80_o112_se0.25", "r4_k5_s22_e6_i112_o192_se0.25",
    "r1_k3_s11_e6_i192_o320_se0.25",
]


def official_round_filters(c: int, w: float) -> int:
    # TF efficientnet_model.round_filters, written independently of the code under test.
    new = max(8, int(c * w + 4) // 8 * 8)
    return new + 8 if new < 0.9 * c * w else new


def test_block_strings_round_trip():
    assert [encode_block(s) for s in load_base("b0").stages] == B0_STRINGS
    assert decode_block("r2_k3_s2_e6_i16_o24").se_ratio == 0.0


@pytest.mark.parametrize("bad", ["r2_k3_s22_e6_i16", "r2_k4_s22_e6_i16_o24", "r2_k3_s21_e6_i16_o24", "x2_k3", "r0_k3_s11_e6_i16_o24"])
def test_bad_block_strings(bad):
    with pytest.raises(ScaleSearchError, match="block"):
        decode_block(bad)


def test_rounding_rules():
    assert round_filters(32, 1.1) == 32 and round_filters(1280, 1.1) == 1408 and round_filters(16, 1.8) == 32
    assert round_filters(40, 1.4) == 56 and round_filters(320, 2.0) == 640
    assert round_repeats(3, 1.1) == 4 and round_repeats(1, 1.0) == 1 and round_repeats(4, 3.1) == 13


@pytest.mark.parametrize("seed", range(20))
def test_scale_matches_official_construction(seed):
    import random

    rng = random.Random(seed)
    w, d = rng.uniform(0.5, 3.0), rng.uniform(0.5, 4.0)
    spec = scale(load_base("b0"), w, d)
    for stage, text in zip(spec.stages, B0_STRINGS):
        ref = decode_block(text)
        assert stage.in_ch == official_round_filters(ref.in_ch, w)
        assert stage.out_ch == official_round_filters(ref.out_ch, w)
        assert stage.repeats == -(-ref.repeats * d // 1)
    assert spec.stem == official_round_filters(32, w)
    assert spec.head == official_round_filters(1280, w)  # not torchvision's 4 × round_filters(320, w)


def test_presets_compound_on_base():
    b3 = load_base("b3")
    assert scale(b3).width_mult == pytest.approx(1.2) and scale(b3).resolution == 300
    # Scaling a preset starts from the unrounded strings: b3 scaled by 1.5 equals b0 scaled by 1.8 / 2.1.
    assert scale(b3, 1.5, 1.5).stages == scale(load_base("b0"), 1.8, 2.1).stages


def test_params_equal_reference(reference):
    for row in reference:
        net = build(scale(load_base(row["name"])))
        assert sum(p.numel() for p in net.parameters()) == int(row["params_exact"]), row["name"]


def test_module_structure_follows_spec():
    import torch

    spec = scale(load_base("b1"))
    net = build(spec, num_classes=7, in_channels=1)
    assert len(net.blocks) == sum(s.repeats for s in spec.stages) == 23
    bn = net.stem[1]
    assert bn.eps == 1e-3 and bn.momentum == 0.01
    residual = [b.residual for b in net.blocks]
    assert residual.count(True) == 23 - 7  # every repeat after the first of a stage
    net.eval()
    assert net(torch.zeros(2, 1, 40, 40)).shape == (2, 7)


def test_official_init():
    import math

    net = build(scale(load_base("b0")), num_classes=10)
    w = net.blocks[3].depthwise[0].weight  # 5×5 depthwise: fan_out = 25 · c / c groups = 25
    assert w.std().item() == pytest.approx(math.sqrt(2 / 25), rel=0.1)
    w = net.head[0].weight  # 1×1 conv to 1280: fan_out = 1280
    assert w.std().item() == pytest.approx(math.sqrt(2 / 1280), rel=0.05)
    bound = 1 / math.sqrt(10)
    assert net.classifier.weight.abs().max().item() <= bound


def test_user_base_file(tmp_path):
    base = load_base("tiny-mbconv")
    assert base.name == "tiny-mbconv" and base.resolution == 32 and "tiny-mbconv" in known_bases()
    path = tmp_path / "mine.toml"
    path.write_text('name = "mine"\nresolution = 64\nstem = 8\nhead = 64\nblocks = ["r1_k3_s11_e1_i8_o16_se0.25", "r2_k3_s22_e4_i16_o24"]\n')
    spec = scale(load_base(str(path)), 2.0, 2.0)
    assert spec.stem == 16 and [s.repeats for s in spec.stages] == [2, 4]


@pytest.mark.parametrize("text, message", [
    ('resolution = 64\nstem = 8\nhead = 64\nblocks = ["r1_k3_s11_e1_i8_o16"]\nscale = 2\n', "unknown key 'scale'"),
    ('resolution = 64\nstem = 8\nhead = 64\nblocks = ["r1_k3_s11_e1_i8_o16"]\nwidth = "wide"\n', "'width' must be a float"),
    ('resolution = 64\nhead = 64\nblocks = ["r1_k3_s11_e1_i8_o16"]\n', "missing key 'stem'"),
    ('resolution = 4\nstem = 8\nhead = 64\nblocks = ["r1_k3_s11_e1_i8_o16"]\n', "'resolution' must be a int from 8 to 4,096"),
    ('resolution = 64\nstem = 8\nhead = 64\nblocks = ["r1_k3_s11_e1_i9_o16"]\n', "has i9 but the previous layer gives 8"),
    ('resolution = 64\nstem = 8\nhead = 64\nblocks = []\n', "non-empty list"),
    ('resolution = 64\nstem = "8"\nhead = 64\nblocks = ["r1_k3_s11_e1_i8_o16"]\n', "'stem' must be a int"),
    ("resolution = [\n", "not a valid TOML file"),
])
def test_bad_base_files(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ScaleSearchError, match=message) as info:
        load_base(str(path))
    assert str(path) in str(info.value)


def test_unknown_base_lists_choices():
    with pytest.raises(ScaleSearchError, match="choose one of b0, b1"):
        load_base("b9")


@pytest.mark.parametrize("kwargs", [{"width": 0}, {"depth": -1}, {"resolution": 7}])
def test_bad_multipliers(kwargs):
    with pytest.raises(ScaleSearchError):
        scale(load_base("b0"), **kwargs)


def test_base_toml_round_trips_presets_with_multipliers(tmp_path):
    """A base object written as a file (as scalesearch.run does for objects) loads back equal, multipliers included."""
    from scalesearch.arch import base_toml

    for name in ("b0", "b3"):
        b = load_base(name)
        path = tmp_path / f"{name}.toml"
        path.write_text(base_toml(b))
        back = load_base(path)
        assert replace(back, source="") == replace(b, source=""), name
        assert scale(back) == scale(b)
