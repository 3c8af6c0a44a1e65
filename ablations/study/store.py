"""The results directory as a store: per-cohort parts, the lock, manifests and resume (the format of its files is
`study.results_format`'s).

A part is written in a temporary directory, renamed into place, and only then marked done (DESIGN.md invariant 6);
anything without DONE.json is debris from an interrupted run and is removed under the lock. `verify_parts` checks
every part's files against the checksums and row counts in its DONE.json (and DONE.json itself); a part that fails is
removed, naming it, and its runs are trained again. The combined CSVs' checksums go into the manifest (`files`), and
`results_format.verify_combined` refuses combined CSVs that no longer match them. A run's record is the
one in the done part with the highest sequence number, so `--retry-failed` writes a new part for the failed runs
and leaves their cohort-mates' part alone. Parts are read back as text (`read_text_table`), so combining copies
text and never reformats a number.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import fcntl
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from ..files import fsync_dir, write_text_atomic
from .machine import class_key
from .results_format import (CURVES_COLUMNS, DONE_MARKER, PROBES_COLUMNS, SUMS, TABLES, TIMINGS_COLUMNS, CorruptError,
                             StoreError, check_files, csv_text, empty_columns, file_record, format_cell, frame,
                             manifest_redo, read_json, read_text_table, runs_columns, write_csv_atomic,
                             write_json_atomic)


def now() -> str:
    """The local time with its UTC offset, to the second (the manifest's and the parts' time stamps)."""
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")


# ---- parts -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Part:
    """A finished cohort part on disk."""

    path: Path
    seq: int
    runs: dict[str, dict[str, str]]  # run_id → {"status", "error"}
    machine: dict[str, Any] = field(default_factory=dict)  # the worker's `machine.current_machine()` ({} if unrecorded)
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
            raise StoreError(f"{self.root} is in use by another `ablations run`, `train` or `pack` (pid {holder}); "
                             "wait for it to finish or stop it, then run again") from None
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
        # read-only is enough for flock: a finished directory may be read-only (a published copy)
        with open(path, "r", encoding="utf-8") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                fh.seek(0)
                text = fh.read().strip()
                return int(text) if text.isdigit() else -1
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
            return None

    # -- parts ---------------------------------------------------------------------------------------------------
    def packed(self) -> bool:
        """Whether this is a packed directory without its cohort parts (`pack --delete-sources`): its runs are those
        of its runs.csv, checked by its SHA256SUMS."""
        return (self.root / SUMS).is_file() and not self.parts()

    def clean_incomplete(self) -> list[Path]:
        """Remove temp dirs, parts without a done marker and the temporary files of atomic writes a killed process
        left (``.<name>.*.tmp``, `files.write_atomic`'s) (call under the lock)."""
        removed = []
        for path in sorted(self.root.glob(".*.tmp")):
            if path.is_file():
                path.unlink(missing_ok=True)
                removed.append(path)
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
        `machine.current_machine()`, kept in the marker, its `class_key` in timings.csv."""
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
        fsync_dir(self.parts_dir)
        info = {"seq": seq, "cohort_id": cohort_id, "finished": now(), "machine": dict(machine or {}),
                "files": files,
                "runs": [{"run_id": r["run_id"], "status": format_cell(r.get("status")),
                          "error": format_cell(r.get("error"))} for r in runs]}
        write_json_atomic(final / DONE_MARKER, info)
        return Part(final, seq, {r["run_id"]: {"status": r["status"], "error": r["error"]} for r in info["runs"]},
                    info["machine"], files)

    def machines(self, run_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The machine classes that trained the latest record of each of `run_ids`: class key → the worker's
        `machine.current_machine()` with the number of runs it trained (`runs`). Parts written before machines were
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
            if table != "runs":  # the large tables: line by line when they can be (`_combined_lines`)
                streamed = _combined_lines([(path / f"{table}.csv", ids) for path, ids in sorted(by_part.items())],
                                           position)
                if streamed is not None:
                    write_text_atomic(self.root / f"{table}.csv", streamed[0])
                    counts[table] = streamed[1]
                    continue
            pieces = []
            for part_path, run_ids in sorted(by_part.items()):
                df = read_text_table(part_path / f"{table}.csv")
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
                df = pd.DataFrame(columns=empty_columns(table))
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
                               f"{manifest_redo()}")
        return manifest

    def write_manifest(self, manifest: Mapping[str, Any]) -> None:
        write_json_atomic(self.manifest_path, dict(manifest))

    def check_compatible(self, run_ids: Sequence[str], study_path: str, *, grows: bool = False) -> None:
        """Refuse a results directory whose runs are not exactly this study's runs (`grows`: a sequential study's
        next wave, whose runs include every run the directory holds)."""
        manifest = self.read_manifest()
        wanted = set(run_ids)
        have: set[str] = set(manifest["run_ids"]) if manifest else set()
        have |= {run_id for part in self.parts() for run_id in part.runs}
        if manifest is None and not have:
            return
        if have != wanted and not ((manifest is None or grows) and have <= wanted):
            added, removed = len(wanted - have), len(have - wanted)
            raise StoreError(
                f"{self.root} holds results of a different run set than {study_path} ({added} run(s) added, "
                f"{removed} removed: the study file changed). Use another --out directory, or move {self.root} "
                "away to start over")


def _combined_lines(pieces: Sequence[tuple[Path, Sequence[str]]],
                    position: Mapping[str, int]) -> tuple[str, int] | None:
    """`combine`'s text of one table and its row count, from the parts' lines, or None when pandas must combine it.

    A part file that pandas wrote holds no quote character exactly when no cell needed quoting (no comma, quote or
    line break in any cell), and then each line is one record whose first cell is unquoted: when every part with rows
    is so and has the same header, starting with run_id, the combined file is that header and the wanted runs' lines
    in run order, each run's lines as written: byte for byte what reading the parts as text and writing them back
    gives (`tests/study/test_store.py`), without holding every cell as a Python string (a study's probes.csv has
    millions of them: the factorial's combine took 996 MiB through pandas, 607 MiB line by line)."""
    header, lines = None, {}
    for path, run_ids in pieces:
        text = path.read_text(encoding="utf-8") if path.is_file() else ""
        if "\"" in text or "\r" in text:
            return None
        head, _, body = text.partition("\n")
        if not body:
            continue  # no rows (pandas skips the part too)
        if header is None:
            header = head
        if head != header or head.split(",", 1)[0] != "run_id" or not body.endswith("\n"):
            return None
        keep = set(run_ids)
        for line in body[:-1].split("\n"):
            run_id = line.split(",", 1)[0]
            if run_id in keep:
                lines.setdefault(run_id, []).append(line)
    if not lines:
        return None  # no wanted rows: pandas writes the table's empty header
    ordered = sorted(lines, key=position.__getitem__)
    rows = [line for run_id in ordered for line in lines[run_id]]
    return "\n".join([header, *rows]) + "\n", len(rows)

