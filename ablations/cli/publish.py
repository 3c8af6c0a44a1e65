"""`ablations pack` and `ablations reproduce`: publish a study's results in the repository, and check them."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from .run import _console, _fail, _study_or_exit


def pack(results_dir: Annotated[Path, typer.Argument(help="A finished results directory (results/<study>).")],
         digits: Annotated[int, typer.Option(min=3, max=17, help="Significant digits kept in the packed CSVs.")] = 6,
         ) -> None:
    """Pack results for committing: hashes of the full-precision CSVs, rounded + xz-compressed curves and probes."""
    from ..study.publish import PublishError
    from ..study.publish import pack as do_pack

    console = _console()
    try:
        written = do_pack(results_dir, digits)
    except PublishError as exc:
        raise _fail(console, str(exc), 2) from None
    for name, size in written.items():
        console.print(f"{results_dir}/{name}: {size / 2**20:.2f} MiB")
    console.print(f"{results_dir}/SHA256SUMS written; cohort parts removed")


def reproduce(
    study: Annotated[str, typer.Argument(help="The study file (studies/<name>.toml) or its name.")],
    results: Annotated[Optional[Path], typer.Option(help="The published results [default: results/<name>].")] = None,
    workers: Annotated[Optional[int], typer.Option(min=1, help="Worker processes [default: all cores].")] = None,
    keep: Annotated[Optional[Path], typer.Option(help="Write the fresh results here (kept) instead of a temp dir.")] = None,
) -> None:
    """Rerun a published study from its file and check the new CSVs are identical to the committed ones."""
    from ..study.executors import make_executor, run_study
    from ..study.progress import RichProgress
    from ..study.publish import PublishError, compare
    console = _console()
    spec = _study_or_exit(console, study)
    published = results or Path("results") / spec.name
    if not (published / "SHA256SUMS").exists():
        raise _fail(console, f"{published}: no SHA256SUMS; publish it first with `ablations pack {published}`", 2)
    with tempfile.TemporaryDirectory(prefix=f"reproduce_{spec.name}_") as tmp:
        out = keep or Path(tmp) / spec.name
        ex = make_executor("local", workers=workers, imports=spec.imports)
        console.print(f"reproducing {spec.name} into {out} and comparing with {published}")
        run_study(spec, out, ex, progress=RichProgress(console, spec.name))
        try:
            checks = compare(published, out)
        except PublishError as exc:
            raise _fail(console, str(exc), 2) from None
    table = Table("file", "identical", "detail", title=f"{spec.name}: fresh run vs {published}")
    for c in checks:
        table.add_row(c.name, "yes" if c.identical else "[bold red]NO[/]", c.detail)
    console.print(table)
    if not all(c.identical for c in checks):
        raise typer.Exit(code=1)
