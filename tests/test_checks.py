"""pyg_plstm.checks: argument validators name the argument, the value and what was expected."""
import pytest

from pyg_plstm.checks import check_choice, check_dropout, check_positive


def test_check_positive():
    check_positive(heads=1, channels=96)
    for value in (0, -3, 2.0, True, None, "4"):
        with pytest.raises(ValueError, match=rf"^`channels` must be a positive integer, got {value!r}$"):
            check_positive(heads=2, channels=value)


def test_check_dropout():
    for value in (0, 0.0, 0.5, 0.999):
        check_dropout(value)
    for value in (1.0, -0.1, 1, True, None, "0.1"):
        with pytest.raises(ValueError, match=rf"^`dropout` must lie in \[0, 1\), got {value!r}$"):
            check_dropout(value)
    with pytest.raises(ValueError, match=r"^`attention_dropout` must lie in \[0, 1\), got 2$"):
        check_dropout(2, "attention_dropout")


def test_check_choice():
    check_choice("pooling", "mean", ("mean", "sum"))
    check_choice("pos_encoding", None, ("degree", None))
    with pytest.raises(ValueError, match=r"^`pooling` must be one of \('mean', 'sum'\), got 'median'$"):
        check_choice("pooling", "median", ["mean", "sum"])
