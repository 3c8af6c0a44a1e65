"""`ablations.cli.common`: the seed and layer-size parsers (accepted forms, the exact error messages), the error
exit (`fail`: message on stderr, exit code 2) and the progress bar's columns."""

from __future__ import annotations

import io

import pytest
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TimeElapsedColumn, TimeRemainingColumn

from ablations.cli import common
from ablations.cli.common import fail, parse_hidden, parse_seeds, progress_bar
from ablations.config import ConfigError

SYNTAX = "allowed: a range '0-7', a list '0,3,5' or one seed '4'"
DISTINCT = "allowed: distinct non-negative integers"


@pytest.mark.parametrize("text, seeds", [
    ("0-7", [0, 1, 2, 3, 4, 5, 6, 7]),  # a range, both ends included
    ("0,3,5", [0, 3, 5]),  # a list, in its order
    ("5,3,0", [5, 3, 0]),
    ("4", [4]),  # one seed, not a count
    ("0", [0]),
    ("2-2", [2]),  # a range of one
    ("0-2,5", [0, 1, 2, 5]),  # ranges and seeds mixed
    ("7-8,1", [7, 8, 1]),
    (" 1 , 2 ", [1, 2]),  # spaces around the items
])
def test_parse_seeds_accepted_forms(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text", ["", "a", "3-1", "-1", "1.5", "1-2-3", "0x3", "1,,2", "0-"])
def test_parse_seeds_syntax_errors_name_the_forms(text):
    with pytest.raises(ConfigError) as exc:
        parse_seeds(text)
    assert str(exc.value) == f"seeds={text!r} is invalid; {SYNTAX}"


@pytest.mark.parametrize("text", ["1,1", "0-3,2", "4,0-4"])
def test_parse_seeds_repeats_are_refused(text):
    with pytest.raises(ConfigError) as exc:
        parse_seeds(text)
    assert str(exc.value) == f"seeds={text!r} is invalid; {DISTINCT}"


def test_parse_seeds_errors_carry_no_chained_cause():
    with pytest.raises(ConfigError) as exc:
        parse_seeds("x")
    assert exc.value.__cause__ is None and exc.value.__suppress_context__


@pytest.mark.parametrize("text, sizes", [("64-64", (64, 64)), ("64x64", (64, 64)), ("32,32", (32, 32)), ("8", (8,)),
                                         ("16-8x4", (16, 8, 4))])
def test_parse_hidden_accepted_forms(text, sizes):
    assert parse_hidden(text) == sizes


@pytest.mark.parametrize("text", ["", "a-b", "64--64", "64-", "1.5"])
def test_parse_hidden_errors(text):
    with pytest.raises(ConfigError) as exc:
        parse_hidden(text)
    assert str(exc.value) == f"hidden={text!r} is invalid; allowed: layer sizes like '64-64'"


def test_fail_prints_the_error_on_stderr_and_exits_2(monkeypatch):
    buffer = io.StringIO()
    monkeypatch.setattr(common, "err", Console(file=buffer, width=200, color_system=None))
    exit_ = fail(ConfigError("seeds='x' is invalid"))
    assert isinstance(exit_, typer.Exit) and exit_.exit_code == 2
    assert buffer.getvalue() == "error: seeds='x' is invalid\n"


def test_the_stderr_console_writes_to_stderr():
    assert common.err.stderr


def test_progress_bar_columns_and_console():
    console = Console(file=io.StringIO())
    bar = progress_bar(console)
    assert bar.console is console
    kinds = [type(c) for c in bar.columns]
    assert kinds[1:3] == [BarColumn, MofNCompleteColumn] and kinds[-2:] == [TimeElapsedColumn, TimeRemainingColumn]
    assert progress_bar().console is common.err  # stderr by default
