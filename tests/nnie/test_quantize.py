"""Tests for nnbuild.nnie.quantize against nnie-facts.md §4 (and an independent float64 formula)."""

from __future__ import annotations

import numpy as np
import pytest

from nnbuild.nnie import quantize as nq

SPEC = {8: (16, 127), 16: (128, 1407)}  # bits -> (levels per octave, steps), nnie-facts.md §4


def reference(x, m, bits):
    """nnie-facts.md §4 written out literally in float64, element by element semantics."""
    steps, qmax = SPEC[bits]
    x = np.asarray(x, dtype=np.float64)
    z = np.floor(steps * np.log2(m)) - qmax
    with np.errstate(divide="ignore"):
        r = np.floor(steps * np.log2(np.abs(x)) - z + 0.5)
    neg = x < 0
    q = np.clip(r, np.where(neg, 1.0, 0.0), qmax)
    y = np.where(neg, -1.0, 1.0) * 2.0 ** ((z + q) / steps)
    y[np.abs(x) < 0.5 * 2.0 ** ((z + neg) / steps)] = 0.0
    return y.astype(np.float32)


def test_published_test_vector():
    values = [-9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    expected = [-8.724, 0, 1, 2, 2.9537, 4, 4.9674, 5.9073, 7.0250, 8, 8.724]
    np.testing.assert_allclose(nq.quantize(values, 9.0), expected, atol=5e-4)


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("m", [9.0, 1.0, 0.0312, 255.0, 3.7e4])
def test_matches_reference_formula(bits, m):
    rng = np.random.default_rng(int(m * 100) + bits)
    x = np.concatenate([rng.normal(0, m / 3, 20000), rng.uniform(-2 * m, 2 * m, 5000),
                        m * 2.0 ** rng.uniform(-12, 1, 5000) * rng.choice([-1, 1], 5000)])
    np.testing.assert_array_equal(nq.quantize(x, m, bits), reference(x, m, bits))
    x32 = x.astype(np.float32)  # the fast float32 path must give the same answer
    np.testing.assert_array_equal(nq.quantize(x32, m, bits), reference(x32, m, bits))


@pytest.mark.parametrize("bits", [8, 16])
def test_monotonic(bits):
    x = np.sort(np.random.default_rng(1).normal(0, 2, 50000)).astype(np.float32)
    y = nq.quantize(x, 5.0, bits)
    assert (np.diff(y) >= 0).all()
    assert len(np.unique(y)) > (100 if bits == 8 else 1000)


@pytest.mark.parametrize("bits, count", [(8, 256), (16, 2816)])
def test_every_level_maps_to_itself(bits, count):
    m = 9.0
    lv = nq.levels(m, bits)
    assert lv.size == count and (np.diff(lv) > 0).all()
    steps, qmax = SPEC[bits]
    k = int(np.floor(steps * np.log2(m)))
    positive = (2.0 ** ((k - qmax + np.arange(qmax + 1)) / steps)).astype(np.float32)
    np.testing.assert_array_equal(lv[lv > 0], positive)
    np.testing.assert_array_equal(lv[lv < 0], -positive[:0:-1])  # negatives lack the q=0 level
    np.testing.assert_array_equal(nq.quantize(lv, m, bits), lv)
    np.testing.assert_array_equal(nq.quantize(lv.astype(np.float64), m, bits), lv)


@pytest.mark.parametrize("m, k", [(8.0, 48), (2.0 ** (50 / 16), 50), (np.nextafter(8.0, 0), 47)])
def test_top_index_at_exact_levels(m, k):
    assert nq.top_index(m, 8) == k
    assert nq.levels(m, 8)[-1] <= m


@pytest.mark.parametrize("bits", [8, 16])
def test_zero_thresholds_exact(bits):
    m = 9.0
    steps, qmax = SPEC[bits]
    z = np.floor(steps * np.log2(m)) - qmax
    pos, neg = 2.0 ** (z / steps), 2.0 ** ((z + 1) / steps)
    just_below = np.array([np.nextafter(pos / 2, 0), -np.nextafter(neg / 2, 0)])
    assert (nq.quantize(just_below, m, bits) == 0).all()
    at_half = np.array([pos / 2, -neg / 2])
    np.testing.assert_array_equal(nq.quantize(at_half, m, bits),
                                  np.float32([pos, -neg]))
    # The bands differ by sign: 0.51 * pos is above the positive half-step but its negative is
    # below half the smallest negative level (negatives have no q = 0 level, §4).
    v = 0.5 * (pos + neg) / 2 if bits == 16 else 0.51 * pos
    assert pos / 2 < v < neg / 2
    np.testing.assert_array_equal(nq.quantize([v, -v], m, bits), np.float32([pos, 0.0]))


@pytest.mark.parametrize("bits", [8, 16])
def test_saturation(bits):
    top = nq.levels(9.0, bits)[-1]
    np.testing.assert_array_equal(nq.quantize([9.0, 1e30, np.inf, -1e30], 9.0, bits),
                                  [top, top, top, -top])
    s = nq.summary([1.0, 100.0, 0.0, 1e-9], 9.0, bits)
    assert s["saturated"] == 0.25 and s["flushed_to_zero"] == 0.25
    assert s["top"] == pytest.approx(float(top)) and s["bits"] == bits


def test_codes_8bit_layout_and_round_trip():
    lv = nq.levels(9.0, 8)
    codes = nq.encode(lv, 9.0, 8)
    assert codes.dtype == np.uint8 and len(set(codes.tolist())) == 256
    assert nq.encode([0.0], 9.0)[0] == 0x80
    assert nq.encode([9.0], 9.0)[0] == 127 and nq.encode([-9.0], 9.0)[0] == 0xFF
    np.testing.assert_array_equal(nq.decode(codes, 9.0, 8), lv)
    x = np.random.default_rng(2).normal(0, 3, 1000)
    np.testing.assert_array_equal(nq.decode(nq.encode(x, 9.0), 9.0), nq.quantize(x, 9.0))


def test_codes_16bit_layout_and_round_trip():
    lv = nq.levels(3.0, 16)
    codes = nq.encode(lv, 3.0, 16)
    assert codes.dtype == np.uint16 and len(set(codes.tolist())) == lv.size
    # the .wk word: sign << 15 | q << 2 (wk-format.md §3)
    assert codes.max() == 0x8000 | 1407 << 2 and nq.encode([0.0], 3.0, 16)[0] == 0x8000
    assert nq.encode([3.0], 3.0, 16)[0] == 1407 << 2 and not (codes & 3).any()
    np.testing.assert_array_equal(nq.decode(codes, 3.0, 16), lv)
    with pytest.raises(ValueError, match="magnitude <= 1407"):
        nq.decode([1408 << 2], 3.0, 16)
    with pytest.raises(ValueError, match=r"sign << 15 \| q << 2"):
        nq.decode([5], 3.0, 16)


def test_empty_range_is_all_zero():
    x = np.array([0.0, 1.0, -2.0])
    for m in (0.0, -1.0):
        assert (nq.quantize(x, m) == 0).all() and (nq.decode([5], m) == 0).all()
        assert (nq.encode(x, m, 16) == 0x8000).all()
    np.testing.assert_array_equal(nq.levels(0.0), [0.0])
    assert nq.summary(x, 0.0)["flushed_to_zero"] == pytest.approx(2 / 3)


def test_errors():
    with pytest.raises(ValueError, match="bits must be 8 or 16"):
        nq.quantize([1.0], 1.0, bits=4)
    with pytest.raises(ValueError, match="must be finite"):
        nq.quantize([1.0], np.inf)
    with pytest.raises(ValueError, match="NaN"):
        nq.quantize([np.nan], 1.0)
    with pytest.raises(ValueError, match="NaN"):
        nq.output_codes([np.nan])


def test_output_fixed_point():
    x = np.array([0.1, -0.1, 3 / 4096, 1 / 8192, -1 / 8192, 1e9, -1e9])
    codes = nq.output_codes(x)
    assert codes.dtype == np.int32
    np.testing.assert_array_equal(codes[:5], [410, -410, 3, 1, 0])  # 409.6 -> 410; ties go up
    assert codes[5] == 2**31 - 1 and codes[6] == -2**31
    np.testing.assert_array_equal(nq.output_fixed_point(x[:3]), np.float32([410, -410, 3]) / 4096)
