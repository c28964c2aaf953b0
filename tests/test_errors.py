"""The one-line message format of ``nnbuild.errors`` (docs/design.md module map)."""

from __future__ import annotations

from nnbuild.errors import CheckFailed, ModelError, NNBuildError


def test_the_full_form():
    err = ModelError("m.prototxt:2:1", "syntax error.", expected="a field", got="'}'",
                     hint="fix it.")
    assert str(err) == "m.prototxt:2:1: syntax error. Expected a field, got '}'. Hint: fix it."
    assert err.exit_code == 2 and CheckFailed("w", "x").exit_code == 1


def test_nothing_expected_never_reads_expected_none():
    err = NNBuildError("m.caffemodel", "cannot read the caffemodel", got="No such file",
                       hint="check the path")
    assert str(err) == ("m.caffemodel: cannot read the caffemodel; got No such file. Hint: check "
                        "the path.")
    assert str(NNBuildError("w", "what")) == "w: what."
