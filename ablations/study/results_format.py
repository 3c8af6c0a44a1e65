"""The results format: what the files of ``results/<study>/`` hold and how they are written and read back.

Layout of ``results/<study>/``::

    manifest.json                       study spec, run_ids, versions, git commit, host, times
    runs.csv curves.csv probes.csv      combined, rebuilt from the parts in the study's expansion order
    timings.csv                         run_id, wall_s, machine (the class key of the machine that trained it:
                                        wall time and machine live here, so runs.csv is reproducible)
    .lock                               flock'ed for the whole of `ablations run`; holds the holder's pid
    cohorts/<seq>-<cohort_id>/          one part per trained cohort: the four CSVs, then DONE.json LAST (with the
                                        worker's `machine.current_machine()` and each CSV's SHA-256 and row count)

Owns the column schemas (one list per CSV), the cell format, the text reader (`read_text_table`: cells come back as
the strings written, so combining parts copies text and never reformats a number), the CSV and JSON writers (atomic,
through `ablations.files`), the file records (SHA-256 and row count) and their checks, and the errors a results
directory can raise. `require_complete` is the one check every reader of a results directory calls first: the
manifest is the directory's commit record, written last, so a directory whose manifest still says "running" (or
lacks a combined CSV, or a sequential study's record says more waves are due) is refused, naming what is missing
and the command that finishes it; a packed directory's
files are checked against its SHA256SUMS (`verify_sums`), the others against the manifest's checksums
(`verify_combined`). `study.store` (parts, lock, manifest, resume) and `report` both build on it; it imports nothing
that trains or drives a study.

Cells are formatted by `format_cell` (floats by `repr`, the shortest round-trip form), one value at a time, so a
row's text never depends on the other rows of its cohort.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import numpy as np

from ..config import CONFIG_COLUMNS, RunConfig
from ..files import sha256_file, write_text_atomic
from ..probes.rows import PROBE_REQUIRED_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

#: runs.csv: these columns first, then every RunConfig field, then any other engine column (sorted).
RUNS_LEADING = ["run_id", "study", "status", "error", "env_steps", "updates", "final_return", "eval_return"]
#: Header of curves.csv / probes.csv when no row was written (DESIGN.md "Tidy results").
CURVES_COLUMNS = ["run_id", "update", "env_steps", "episodes", "return_mean", "return_std", "length_mean",
                  "policy_loss", "value_loss", "entropy", "grad_norm"]
PROBES_COLUMNS = PROBE_REQUIRED_COLUMNS  # the probes define their rows (probes/rows.py); an empty file's header
TIMINGS_COLUMNS = ["run_id", "wall_s", "machine"]
#: The four tables of a results directory (and of each part), in the order they are written.
TABLES = ("runs", "curves", "probes", "timings")
#: A part's done marker, written last.
DONE_MARKER = "DONE.json"


class StoreError(RuntimeError):
    """The results directory cannot be used as asked (locked, or made by a different study)."""


class CorruptError(StoreError):
    """A file of the results directory does not match what was written (truncated, edited, not JSON)."""


class IncompleteError(StoreError):
    """The results directory's record (the manifest) says its last `ablations run` did not finish (killed or out of
    space before the combined CSVs and the manifest were written): what it holds is not a result yet."""


#: A packed directory's checksums (`study.publish.pack`): "<sha256>  <name>" lines.
SUMS = "SHA256SUMS"


def runs_columns(columns: Iterable[str]) -> list[str]:
    """runs.csv column order: RUNS_LEADING, the RunConfig fields, then any other column sorted by name."""
    fixed = RUNS_LEADING + CONFIG_COLUMNS
    return fixed + sorted({c for c in columns if c not in fixed})


def empty_columns(table: str) -> list[str]:
    """The header of `table` ("runs", "curves", "probes", "timings") when it has no row."""
    return {"runs": RUNS_LEADING + CONFIG_COLUMNS, "curves": CURVES_COLUMNS, "probes": PROBES_COLUMNS,
            "timings": TIMINGS_COLUMNS}[table]


# ---- cells and frames ------------------------------------------------------------------------------------------
def format_cell(value: Any) -> str:
    """One cell's text: None → "", bools True/False, ints as is, floats by repr (nan, inf, -inf), tuples "64-64"."""
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "True" if value else "False"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, (tuple, list)):
        return "-".join(format_cell(v) for v in value)
    return str(value)


def frame(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Rows of plain values → a DataFrame of strings (columns in first-appearance order unless given)."""
    import pandas as pd  # here: a spawned worker imports this module (`failed_run_row`) and never needs pandas

    if columns is None:
        columns = list(dict.fromkeys(k for row in rows for k in row))
    data = {c: [format_cell(row.get(c)) for row in rows] for c in columns}
    return pd.DataFrame(data, columns=list(columns), dtype=object)


def failed_run_row(cfg: RunConfig, error: str) -> dict[str, Any]:
    """The runs.csv row of a run that raised."""
    return {"run_id": cfg.run_id, "status": "failed", "error": error, "env_steps": None, "updates": None,
            "final_return": None, "eval_return": None, **cfg.cells()}


# ---- reading and writing ---------------------------------------------------------------------------------------
def read_text_table(path: Path) -> pd.DataFrame:
    """A CSV read back as text, cell for cell (no type inference, empty cells stay "")."""
    import pandas as pd  # here (see `frame`)

    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def csv_text(df: pd.DataFrame) -> str:
    """A table's CSV text as every results file has it: no index, "\\n" line ends."""
    return df.to_csv(index=False, lineterminator="\n")


def write_csv_atomic(path: Path, df: pd.DataFrame) -> None:
    """`df` as CSV (`csv_text`) to `path`, atomically."""
    write_text_atomic(path, csv_text(df))


def write_json_atomic(path: Path, obj: Any) -> None:
    """`obj` as indented JSON (non-JSON values by `str`) to `path`, atomically."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


_REDO = {
    "the part's done marker": "the next `ablations run` trains this part's runs again (or delete the part folder)",
    "the manifest": "restore it (e.g. from git), or delete manifest.json alone and run the study again with "
                    "`ablations run` (the finished cohort parts are kept and resumed: nothing is trained twice)",
}


def read_json(path: Path, what: str) -> Any:
    """A JSON file of the results directory, or `CorruptError` naming it (and saying what to do)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorruptError(f"{path}: {what} is not valid JSON ({exc}); it was truncated or edited: {_REDO[what]}"
                           ) from None


def manifest_redo() -> str:
    """What to do about a manifest that cannot be used (the end of its `CorruptError` messages)."""
    return _REDO["the manifest"]


# ---- file records ----------------------------------------------------------------------------------------------
def file_record(path: Path) -> dict[str, Any]:
    """{"sha256": ..., "rows": data rows (lines after the header)} of a CSV file."""
    with open(path, "rb") as fh:
        lines = sum(block.count(b"\n") for block in iter(lambda: fh.read(1 << 20), b""))
    return {"sha256": sha256_file(path), "rows": max(0, lines - 1)}


def check_files(folder: Path, records: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """What differs between `folder`'s files and their `records` (`file_record`s): one problem per file that does
    not match ([] if all do)."""
    problems = []
    for name, want in records.items():
        path = Path(folder) / name
        if not path.is_file():
            problems.append(f"{name} is missing")
            continue
        have = file_record(path)
        if have["rows"] != want.get("rows"):
            problems.append(f"{name} has {have['rows']} rows, {want.get('rows')} were written")
        elif have["sha256"] != want.get("sha256"):
            problems.append(f"{name} has changed since it was written (SHA-256 differs)")
    return problems


def read_sums(root: str | Path) -> dict[str, str]:
    """file name → sha256, as listed in `root`'s SHA256SUMS (in its order); CorruptError if a line is not
    "<64 hex digits>  <name>", FileNotFoundError if there is none."""
    path = Path(root) / SUMS
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        digest, sep, name = line.partition("  ")
        if not line.strip():
            continue
        if not sep or len(digest) != 64 or not name or any(c not in "0123456789abcdef" for c in digest):
            raise CorruptError(f"{path}: line {line[:60]!r} is not '<sha256>  <file>': the file was edited or "
                               "truncated; restore it (e.g. from git) or pack the directory again from its sources")
        out[name] = digest
    return out


def verify_sums(root: str | Path) -> None:
    """Raise `CorruptError` unless every file `root`'s SHA256SUMS lists is there and has its listed hash. A file
    packed without its full-precision source (``curves.csv`` → ``curves.csv.xz``, deleted by `pack
    --delete-sources`) must have its packed form; the packed form itself is not hashed."""
    root = Path(root)
    problems = []
    for name, digest in read_sums(root).items():
        path = root / name
        if not path.is_file():
            if not (root / (name + ".xz")).is_file():
                problems.append(f"{name} is missing (nor is {name}.xz there)")
        elif sha256_file(path) != digest:
            problems.append(f"{name} differs from its {SUMS} hash (edited after packing)")
    if problems:
        raise CorruptError(f"{root}: {'; '.join(problems)}; restore the published files (e.g. `git checkout -- "
                           f"{root}`) or run the study again and pack it")


def finish_command(root: str | Path, manifest: Mapping[str, Any] | None) -> str:
    """The command that finishes (or redoes) the `ablations run` that wrote `root`."""
    path = ((manifest or {}).get("study") or {}).get("path") or "<study file>"
    return f"ablations run {path} --out {root}"


def require_complete(root: str | Path, *, command: str | None = None) -> dict[str, Any]:
    """The manifest of a results directory whose last `ablations run` finished (its commit record says so, every
    combined CSV is there and matches its checksums: `verify_combined`, or `verify_sums` once packed); a tuned
    study's stage 1 (the manifest's ``tune.stage1_dir``) too. Raises `IncompleteError` naming what is missing and
    the command that finishes it, `CorruptError` for a file that changed, `StoreError` if there is no manifest.
    Every reader of a results directory (`status`, `report`, `pack`, `reproduce`) calls it first."""
    root = Path(root)
    path = root / "manifest.json"
    if not path.is_file():
        raise StoreError(f"{root} has no manifest.json: not a results directory of `ablations run`")
    manifest = read_json(path, "the manifest")
    if not isinstance(manifest, dict) or not isinstance(manifest.get("run_ids"), list):
        raise CorruptError(f"{path}: not a manifest of `ablations run` (no 'run_ids' list): {manifest_redo()}")
    command = command or finish_command(root, manifest)
    missing = [f"{t}.csv" for t in TABLES if not (root / f"{t}.csv").is_file()
               and not (root / f"{t}.csv.xz").is_file()]
    if manifest.get("status") == "running" or missing:
        what = f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing" if missing else \
            "the combined CSVs may be partly written"
        raise IncompleteError(f"{root}: the last `ablations run` did not finish (its manifest says "
                              f"{manifest.get('status', 'no status')!r}; {what}): killed, or out of space, before it "
                              f"combined the cohort parts. Finish it with `{command}` (nothing done is trained again)")
    sequential = manifest.get("sequential")
    if isinstance(sequential, dict) and sequential.get("stopped") is False:
        waves = sequential.get("waves") or []
        raise IncompleteError(f"{root}: a sequential study whose stopping rule has not stopped yet ({len(waves)} "
                              "wave(s) recorded, more to train): what it holds is not a result yet. Finish it with "
                              f"`{command}` (nothing done is trained again)")
    if (root / SUMS).is_file():
        verify_sums(root)
    verify_combined(root, manifest)  # the files there (runs.csv and timings.csv once packed) as `run` wrote them
    stage1 = (manifest.get("tune") or {}).get("stage1_dir")
    if stage1:
        require_complete(root / stage1, command=command)
    return manifest


def verify_combined(root: str | Path, manifest: Mapping[str, Any] | None) -> None:
    """Raise `CorruptError` if a combined CSV of `root` no longer matches the checksum and row count the manifest
    recorded when `ablations run` wrote it (manifests without `files` are not checked; a packed directory's files
    are `verify_sums`'s)."""
    problems = check_files(Path(root), {name: rec for name, rec in ((manifest or {}).get("files") or {}).items()
                                        if (Path(root) / name).is_file()})
    if problems:
        raise CorruptError(f"{root}: {'; '.join(problems)}: the combined CSVs were truncated or edited after "
                           "`ablations run` wrote them; run the study again (`ablations run <study> --out "
                           f"{root}` rebuilds them from the cohort parts)")
