"""nnbuild.nnie.fastquant must agree bit for bit with nnbuild.nnie.quantize."""

from __future__ import annotations

import numpy as np
import pytest

from nnbuild.nnie import quantize as nq
from nnbuild.nnie.fastquant import Table


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("max_abs", [9.0, 1.0, 0.0123, 1234.5])
def test_table_equals_quantizer_everywhere_that_matters(bits, max_abs):
    rng = np.random.default_rng(bits)
    table = Table(max_abs, bits)
    spread = max_abs * np.exp(rng.uniform(-14, 1, 200_000))
    values = (rng.choice([-1.0, 1.0], spread.size) * spread).astype(np.float32)
    thresholds = table.threshold[table.threshold != 0xFFFFFFFF]
    edges = np.concatenate([thresholds, thresholds - 1, thresholds + 1]).view(np.float32)
    special = np.float32([0.0, -0.0, max_abs, -max_abs, 2 * max_abs, 3e38, -3e38, 1e-40])
    probe = np.concatenate([values, edges[np.isfinite(edges)], special])
    np.testing.assert_array_equal(table(probe), nq.quantize(probe, max_abs, bits=bits))
    # one threshold per level boundary and sign, plus the two zero thresholds
    steps = nq.FORMATS[bits][1]
    assert thresholds.size == 2 * (steps + 1)


def test_zero_range_rounds_everything_to_zero():
    assert not Table(0.0, 8)(np.float32([1.0, -5.0, 0.0])).any()
