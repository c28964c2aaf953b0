"""Per-channel arithmetic (nnbuild/engine/channelwise.py) against numpy's plain broadcasting."""

from __future__ import annotations

import numpy as np
import pytest

from nnbuild.engine import channelwise

RNG = np.random.default_rng(11)


def frozen(a):
    a = np.ascontiguousarray(a, dtype=np.float32)
    a.flags.writeable = False
    return a


def reference(op, x, v):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return op(x.astype(np.float64), np.asarray(v, np.float64).reshape(shape))


@pytest.mark.parametrize("shape", [
    (1, 16, 7, 7),      # rows shorter than the buffer: full-size copy of v
    (1, 8, 20, 20),     # rows longer than the buffer
    (2, 5, 3, 3),       # a batch of short rows
    (3, 4, 16, 16),     # a batch of long rows
    (1, 6),             # InnerProduct-like (N, C): rows of one element
    (2, 3, 10),         # 3-D
])
@pytest.mark.parametrize("fn,op", [(channelwise.mul, np.multiply), (channelwise.add, np.add)])
def test_matches_broadcasting_for_every_row_length(shape, fn, op):
    x = RNG.standard_normal(shape).astype(np.float32)
    v = frozen(RNG.standard_normal(shape[1]))
    with channelwise.small_ufunc_buffer():
        got = fn(x, v)
        again = fn(x, v)  # served from the cached full-size copy, where there is one
        inplace = fn(x.copy(), v, out=None)
    for result in (got, again, inplace):
        assert result.shape == x.shape and result.dtype == np.float32
        np.testing.assert_allclose(result, reference(op, x, v), rtol=1e-6, atol=1e-6)


def test_out_may_be_the_input_and_non_contiguous_inputs_work():
    x = RNG.standard_normal((1, 8, 7, 7)).astype(np.float32)
    v = frozen(RNG.uniform(0.5, 2, 8))
    want = reference(np.multiply, x, v)
    y = x.copy()
    assert channelwise.mul(y, v, out=y) is y
    np.testing.assert_allclose(y, want, rtol=1e-6)
    strided = np.asfortranarray(x)  # not C-contiguous: plain broadcasting is used
    np.testing.assert_allclose(channelwise.mul(strided, v), want, rtol=1e-6)
    np.testing.assert_allclose(channelwise.mul(x, np.float32(3)), x * 3, rtol=1e-6)


def test_other_dtypes_still_give_float32():
    x = RNG.standard_normal((1, 3, 4, 4)).astype(np.float32)
    v = np.array([1.5, -2.0, 0.25])  # float64, and a list
    for vector in (v, list(v)):
        got = channelwise.mul(x, vector)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, reference(np.multiply, x, v), rtol=1e-6)
    assert channelwise.add(x.astype(np.float64), v.astype(np.float32)).dtype == np.float32


def test_an_edited_writable_vector_is_never_served_stale():
    x = np.ones((1, 4, 3, 3), np.float32)
    v = np.arange(4, dtype=np.float32)  # writable: the caller may change it between calls
    with channelwise.small_ufunc_buffer():
        first = channelwise.mul(x, v)
        v[:] = 10
        second = channelwise.mul(x, v)
    assert first[0, 3, 0, 0] == 3 and second[0, 3, 0, 0] == 10


def test_small_ufunc_buffer_is_restored_even_on_error():
    before = np.getbufsize()
    with pytest.raises(RuntimeError):
        with channelwise.small_ufunc_buffer():
            assert np.getbufsize() == channelwise.BUFSIZE
            raise RuntimeError("boom")
    assert np.getbufsize() == before
