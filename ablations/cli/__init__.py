"""The `ablations` command line (a Typer app, `ablations.cli.app.app`), one thin module per command group: parse,
build configs, call the library. The console script and `python -m ablations.cli` start it through
`ablations.cli.entry.main`.

This package's `__init__` imports nothing: a worker process that multiprocessing spawns re-imports its parent's main
module (the console script, or this package's `__main__`), and each import here would be paid again by every worker
before it trains."""
