"""What the command modules share: the stderr console, parsing of seed and layer-size lists, the error exit, the
progress bar."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..config import ConfigError
from ..study.sections import SeedsError, parse_seed_text

err = Console(stderr=True)


def parse_seeds(text: str) -> list[int]:
    """'0-7' → 0..7; '0,3,5' → [0, 3, 5]; '4' → [4] (read by `study.sections.parse_seed_text`; the errors are worded
    for the command line)."""
    try:
        return list(parse_seed_text(text))
    except SeedsError as exc:
        if exc.reason == "syntax":
            raise ConfigError(f"seeds={text!r} is invalid; allowed: a range '0-7', a list '0,3,5' or one seed '4'"
                              ) from None
        raise ConfigError(f"seeds={text!r} is invalid; allowed: distinct non-negative integers") from None


def parse_hidden(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(x) for x in text.replace("x", "-").replace(",", "-").split("-"))
    except ValueError:
        raise ConfigError(f"hidden={text!r} is invalid; allowed: layer sizes like '64-64'") from None
    return sizes


def fail(exc: Exception) -> typer.Exit:
    err.print(f"[bold red]error:[/] {exc}")
    return typer.Exit(code=2)


def progress_bar(console: Console | None = None) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=console or err)
