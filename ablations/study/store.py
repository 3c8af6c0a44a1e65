"""Results on disk: the CSV schema, atomic writes, per-cohort parts, the lock, manifests and resume.

Layout of ``results/<study>/``::

    manifest.json                       study spec, run_ids, versions, git commit, host, times
    runs.csv curves.csv probes.csv      combined, rebuilt from the parts in the study's expansion order
    timings.csv                         run_id, wall_s, machine (the class key of the machine that trained it:
                                        wall time and machine live here, so runs.csv is reproducible)
    .lock                               flock'ed for the whole of `ablations run`; holds the holder's pid
    cohorts/<seq>-<cohort_id>/          one part per trained cohort: the four CSVs, then DONE.json LAST (with the
                                        worker's `machine.describe()` and each CSV's SHA-256 and row count)

A part is written in a temporary directory, renamed into place, and only then marked done (DESIGN.md invariant 6);
anything without DONE.json is debris from an interrupted run and is removed under the lock. `verify_parts` checks
every part's files against the checksums and row counts in its DONE.json (and DONE.json itself); a part that fails is
removed, naming it, and its runs are trained again. The combined CSVs' checksums go into the manifest (`files`), and
`verify_combined` refuses combined CSVs that no longer match them. A run's record is the
one in the done part with the highest sequence number, so `--retry-failed` writes a new part for the failed runs
and leaves their cohort-mates' part alone.

Cells are formatted by `format_cell` (floats by `repr`, the shortest round-trip form), one value at a time, so a
row's text never depends on the other rows of its cohort; parts are read back as strings, so combining copies
text and never reformats a number.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import fcntl
import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from ..config import CONFIG_COLUMNS, RunConfig
from .machine import class_key

#: runs.csv: these columns first, then every RunConfig field, then any other engine column (sorted).
RUNS_LEADING = ["run_id", "study", "status", "error", "env_steps", "updates", "final_return", "eval_return"]
#: Header of curves.csv / probes.csv when no row was written (DESIGN.md "Tidy results").
CURVES_COLUMNS = ["run_id", "update", "env_steps", "episodes", "return_mean", "return_std", "length_mean",
                  "policy_loss", "value_loss", "entropy", "grad_norm"]
PROBES_COLUMNS = ["run_id", "update", "env_steps", "returns", "baseline", "normalize", "entropy_coef", "n_episodes",
                  "k_batches", "total_var", "mean_sq_norm", "snr", "cos_to_reference", "pairwise_cos",
                  "bias_sq_norm", "is_trained_estimator"]
TIMINGS_COLUMNS = ["run_id", "wall_s", "machine"]
TABLES = ("runs", "curves", "probes", "timings")
STATUSES = ("done", "diverged", "failed")
DONE_MARKER = "DONE.json"


class StoreError(RuntimeError):
    """The results directory cannot be used as asked (locked, or made by a different study)."""


class CorruptError(StoreError):
    """A file of the results directory does not match what was written (truncated, edited, not JSON)."""


def read_json(path: Path, what: str) -> Any:
    """A JSON file of the results directory, or `CorruptError` naming it (and saying what to do)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorruptError(f"{path}: {what} is not valid JSON ({exc}); it was truncated or edited: {_REDO[what]}"
                           ) from None


_REDO = {
    "the part's done marker": "the next `ablations run` trains this part's runs again (or delete the part folder)",
    "the manifest": "restore it (e.g. from git), or move the results directory away and run the study again",
}


def file_record(path: Path) -> dict[str, Any]:
    """{"sha256": ..., "rows": data rows (lines after the header)} of a CSV file."""
    data = Path(path).read_bytes()
    return {"sha256": hashlib.sha256(data).hexdigest(), "rows": max(0, data.count(b"\n") - 1)}


def check_files(folder: Path, records: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """What differs between `folder`'s files and their `records` (`file_record`s): '' per file that matches."""
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
    if columns is None:
        columns = list(dict.fromkeys(k for row in rows for k in row))
    data = {c: [format_cell(row.get(c)) for row in rows] for c in columns}
    return pd.DataFrame(data, columns=list(columns), dtype=object)


def failed_run_row(cfg: RunConfig, error: str) -> dict[str, Any]:
    """The runs.csv row of a run that raised."""
    return {"run_id": cfg.run_id, "status": "failed", "error": error, "env_steps": None, "updates": None,
            "final_return": None, "eval_return": None, **cfg.cells()}


def read_table(path: Path) -> pd.DataFrame:
    """A CSV read back as text, cell for cell (no type inference, empty cells stay "")."""
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


# ---- atomic writes ---------------------------------------------------------------------------------------------
def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to a temp file in the same directory, fsync, then `os.replace` (readers see old or new)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def csv_text(df: pd.DataFrame) -> str:
    return df.to_csv(index=False, lineterminator="\n")


def write_csv_atomic(path: Path, df: pd.DataFrame) -> None:
    write_text_atomic(path, csv_text(df))


def write_json_atomic(path: Path, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")


# ---- parts -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Part:
    """A finished cohort part on disk."""

    path: Path
    seq: int
    runs: dict[str, dict[str, str]]  # run_id → {"status", "error"}
    machine: dict[str, Any] = field(default_factory=dict)  # the worker's `machine.describe()` ({} if unrecorded)
    files: dict[str, Any] = field(default_factory=dict)  # file name → {"sha256", "rows"} ({} if unrecorded)


@dataclass
class RunRecord:
    run_id: str
    status: str
    error: str
    part: Part


class ResultsDir:
    """One study's results directory."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.parts_dir = self.root / "cohorts"
        self.manifest_path = self.root / "manifest.json"
        self._lock_fh: Any = None

    def check_writable(self) -> None:
        """Raise `StoreError` unless the results directory can be created and written (before any work)."""
        probe = self.root
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        if not probe.is_dir():
            raise StoreError(f"{self.root}: cannot create the results directory ({probe} is not a directory); "
                             "choose another --out")
        if not os.access(probe, os.W_OK | os.X_OK):
            raise StoreError(f"{self.root}: cannot write the results directory ({probe} is not writable by this "
                             "user); choose another --out or change its permissions")

    # -- the lock ------------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold an exclusive flock on ``.lock`` (with our pid inside) or raise `StoreError` naming the holder."""
        self.root.mkdir(parents=True, exist_ok=True)
        fh = open(self.root / ".lock", "a+", encoding="utf-8")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EACCES, errno.EAGAIN):
                fh.close()
                raise
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            fh.close()
            raise StoreError(f"{self.root} is in use by another `ablations run` (pid {holder}); wait for it to "
                             "finish or stop it, then run again") from None
        try:
            fh.seek(0)
            fh.truncate()
            fh.write(f"{os.getpid()}\n")
            fh.flush()
            self._lock_fh = fh
            yield
        finally:
            self._lock_fh = None
            with contextlib.suppress(OSError):
                fh.seek(0)
                fh.truncate()
            fh.close()  # closing releases the flock

    def lock_holder(self) -> int | None:
        """The pid holding the lock, or None if nobody does."""
        path = self.root / ".lock"
        if not path.exists():
            return None
        with open(path, "a+", encoding="utf-8") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                fh.seek(0)
                text = fh.read().strip()
                return int(text) if text.isdigit() else -1
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
            return None

    # -- parts ---------------------------------------------------------------------------------------------------
    def clean_incomplete(self) -> list[Path]:
        """Remove temp dirs and parts without a done marker (call under the lock)."""
        removed = []
        if self.parts_dir.is_dir():
            for path in sorted(self.parts_dir.iterdir()):
                if path.is_dir() and (path.name.startswith(".tmp-") or not (path / DONE_MARKER).exists()):
                    shutil.rmtree(path)
                    removed.append(path)
        return removed

    def parts(self) -> list[Part]:
        """Done parts, by sequence number (a part whose DONE.json is unreadable is not done)."""
        out = []
        if not self.parts_dir.is_dir():
            return out
        for path in self.parts_dir.iterdir():
            marker = path / DONE_MARKER
            if path.name.startswith(".") or not marker.exists():
                continue
            try:  # a corrupt marker: the part counts as not done (`verify_parts` removes it under the lock)
                info = read_json(marker, "the part's done marker")
                runs = {r["run_id"]: {"status": r["status"], "error": r["error"]} for r in info["runs"]}
                seq = int(info["seq"])
            except (CorruptError, KeyError, TypeError, ValueError):
                continue
            out.append(Part(path, seq, runs, info.get("machine") or {}, info.get("files") or {}))
        return sorted(out, key=lambda p: p.seq)

    def verify_parts(self) -> list[tuple[Path, str]]:
        """Remove every part whose DONE.json is unreadable or whose files do not match the checksums and row counts
        it records (call under the lock) → [(part, what was wrong)]; their runs count as not trained. Parts written
        before checksums were recorded are kept as they are."""
        bad = []
        if not self.parts_dir.is_dir():
            return bad
        for path in sorted(self.parts_dir.iterdir()):
            marker = path / DONE_MARKER
            if path.name.startswith(".") or not marker.exists():
                continue
            try:
                info = read_json(marker, "the part's done marker")
                if not isinstance(info, dict) or not isinstance(info.get("runs"), list) or "seq" not in info:
                    raise CorruptError("DONE.json has no 'seq' and 'runs'")
                problems = check_files(path, info.get("files") or {})
            except CorruptError:
                problems = ["DONE.json is not valid JSON (truncated or edited)"]
            if problems:
                shutil.rmtree(path)
                bad.append((path, "; ".join(problems)))
        return bad

    def records(self) -> dict[str, RunRecord]:
        """The latest record of every run that has one."""
        out: dict[str, RunRecord] = {}
        for part in self.parts():
            for run_id, info in part.runs.items():
                out[run_id] = RunRecord(run_id, info["status"], info["error"], part)
        return out

    def _next_seq(self) -> int:
        seqs = [0]
        if self.parts_dir.is_dir():
            for path in self.parts_dir.iterdir():
                head = path.name.split("-", 1)[0]
                if head.isdigit():
                    seqs.append(int(head))
        return max(seqs) + 1

    def write_part(self, cohort_id: str, study: str, runs: Sequence[Mapping[str, Any]],
                   curves: Sequence[Mapping[str, Any]], probes: Sequence[Mapping[str, Any]],
                   wall_s: Mapping[str, float], machine: Mapping[str, Any] | None = None) -> Part:
        """Write one cohort's rows atomically; the done marker goes last. `machine`: the worker's
        `machine.describe()`, kept in the marker, its `class_key` in timings.csv."""
        self.parts_dir.mkdir(parents=True, exist_ok=True)
        seq = self._next_seq()
        final = self.parts_dir / f"{seq:06d}-{cohort_id}"
        tmp = self.parts_dir / f".tmp-{seq:06d}-{cohort_id}-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        runs = [{"run_id": r["run_id"], "study": study, **{k: v for k, v in r.items() if k != "run_id"}}
                for r in runs]
        key = class_key(machine) if machine else ""
        tables = {
            "runs": frame(runs, runs_columns(k for r in runs for k in r)),
            "curves": frame(curves, None if curves else CURVES_COLUMNS),
            "probes": frame(probes, None if probes else PROBES_COLUMNS),
            "timings": frame([{"run_id": r["run_id"], "wall_s": wall_s.get(r["run_id"]), "machine": key}
                              for r in runs], TIMINGS_COLUMNS),
        }
        for name, df in tables.items():
            with open(tmp / f"{name}.csv", "w", encoding="utf-8", newline="") as fh:
                fh.write(csv_text(df))
                fh.flush()
                os.fsync(fh.fileno())
        files = {f"{name}.csv": file_record(tmp / f"{name}.csv") for name in tables}
        os.rename(tmp, final)
        _fsync_dir(self.parts_dir)
        info = {"seq": seq, "cohort_id": cohort_id, "finished": now(), "machine": dict(machine or {}),
                "files": files,
                "runs": [{"run_id": r["run_id"], "status": format_cell(r.get("status")),
                          "error": format_cell(r.get("error"))} for r in runs]}
        write_json_atomic(final / DONE_MARKER, info)
        return Part(final, seq, {r["run_id"]: {"status": r["status"], "error": r["error"]} for r in info["runs"]},
                    info["machine"], files)

    def machines(self, run_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The machine classes that trained the latest record of each of `run_ids`: class key → the worker's
        `machine.describe()` with the number of runs it trained (`runs`). Parts written before machines were
        recorded count under the key "unknown"."""
        out: dict[str, dict[str, Any]] = {}
        records = self.records()
        for run_id in run_ids:
            rec = records.get(run_id)
            if rec is None:
                continue
            key = class_key(rec.part.machine) if rec.part.machine else "unknown"
            entry = out.setdefault(key, {**rec.part.machine, "runs": 0})
            entry["runs"] += 1
        return out

    # -- combined tables -----------------------------------------------------------------------------------------
    def combine(self, run_order: Sequence[str]) -> dict[str, int]:
        """Rebuild runs/curves/probes/timings.csv from the parts: runs in `run_order`, each run's rows as written
        (by update, checkpoint, estimator). Byte-identical whatever order the parts were written in. Returns the
        row counts; `combined_files` gives their checksums (for the manifest)."""
        records = self.records()
        position = {run_id: i for i, run_id in enumerate(run_order)}
        by_part: dict[Path, list[str]] = {}
        for run_id, rec in records.items():
            if run_id in position:
                by_part.setdefault(rec.part.path, []).append(run_id)
        counts = {}
        for table in TABLES:
            pieces = []
            for part_path, run_ids in sorted(by_part.items()):
                df = read_table(part_path / f"{table}.csv")
                if len(df):
                    pieces.append(df[df["run_id"].isin(set(run_ids))])
            pieces = [p for p in pieces if len(p)]
            if pieces:
                df = pd.concat(pieces, ignore_index=True, sort=False).fillna("")
                key = df["run_id"].map(position)
                df = df.iloc[np.argsort(key.to_numpy(), kind="stable")]
                if table == "runs":
                    df = df.reindex(columns=runs_columns(df.columns), fill_value="")
            else:
                default = {"runs": RUNS_LEADING + CONFIG_COLUMNS, "curves": CURVES_COLUMNS,
                           "probes": PROBES_COLUMNS, "timings": TIMINGS_COLUMNS}[table]
                df = pd.DataFrame(columns=default)
            write_csv_atomic(self.root / f"{table}.csv", df)
            counts[table] = len(df)
        return counts

    def combined_files(self) -> dict[str, dict[str, Any]]:
        """{"runs.csv": {"sha256", "rows"}, ...} of the combined CSVs that exist."""
        return {f"{t}.csv": file_record(self.root / f"{t}.csv") for t in TABLES if (self.root / f"{t}.csv").is_file()}

    # -- manifest ------------------------------------------------------------------------------------------------
    def read_manifest(self) -> dict[str, Any] | None:
        """The manifest, None if there is none; `CorruptError` naming it if it is not a manifest."""
        if not self.manifest_path.exists():
            return None
        manifest = read_json(self.manifest_path, "the manifest")
        if not isinstance(manifest, dict) or not isinstance(manifest.get("run_ids"), list):
            raise CorruptError(f"{self.manifest_path}: not a manifest of `ablations run` (no 'run_ids' list): "
                               f"{_REDO['the manifest']}")
        return manifest

    def write_manifest(self, manifest: Mapping[str, Any]) -> None:
        write_json_atomic(self.manifest_path, dict(manifest))

    def check_compatible(self, run_ids: Sequence[str], study_path: str) -> None:
        """Refuse a results directory whose runs are not exactly this study's runs."""
        manifest = self.read_manifest()
        wanted = set(run_ids)
        have: set[str] = set(manifest["run_ids"]) if manifest else set()
        have |= {run_id for part in self.parts() for run_id in part.runs}
        if manifest is None and not have:
            return
        if have != wanted and not (manifest is None and have <= wanted):
            added, removed = len(wanted - have), len(have - wanted)
            raise StoreError(
                f"{self.root} holds results of a different run set than {study_path} ({added} run(s) added, "
                f"{removed} removed: the study file changed). Use another --out directory, or move {self.root} "
                "away to start over")


def verify_combined(root: str | Path, manifest: Mapping[str, Any] | None) -> None:
    """Raise `CorruptError` if a combined CSV of `root` no longer matches the checksum and row count the manifest
    recorded when `ablations run` wrote it (manifests without `files`, and packed directories — `SHA256SUMS`
    governs those, checked by `reproduce` — are not checked)."""
    if (Path(root) / "SHA256SUMS").exists():
        return
    problems = check_files(Path(root), {name: rec for name, rec in ((manifest or {}).get("files") or {}).items()
                                        if (Path(root) / name).is_file()})
    if problems:
        raise CorruptError(f"{root}: {'; '.join(problems)}: the combined CSVs were truncated or edited after "
                           "`ablations run` wrote them; run the study again (`ablations run <study> --out "
                           f"{root}` rebuilds them from the cohort parts)")


def runs_columns(columns: Iterable[str]) -> list[str]:
    """runs.csv column order: RUNS_LEADING, the RunConfig fields, then any other column sorted by name."""
    fixed = RUNS_LEADING + CONFIG_COLUMNS
    return fixed + sorted({c for c in columns if c not in fixed})


# ---- provenance ------------------------------------------------------------------------------------------------
def versions() -> dict[str, str]:
    """Package and library versions for the manifest."""
    from .. import __version__

    out = {"ablations": __version__, "python": platform.python_version()}
    for name in ("torch", "gymnasium", "numpy", "pandas", "ray"):
        if name == "ray" and name not in sys.modules:  # recorded when the study used it
            continue
        try:  # the installed distribution's version: importing torch would cost the driver ~200 MiB
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            module = sys.modules.get(name)
            if module is not None:
                out[name] = str(getattr(module, "__version__", "unknown"))
    return out


def git_commit() -> dict[str, Any] | None:
    """The package checkout's commit and whether it has uncommitted changes, if it is a git checkout."""
    where = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip() != ""
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty}


def host() -> dict[str, Any]:
    return {"hostname": socket.gethostname(), "platform": platform.platform(), "cpus": os.cpu_count()}

