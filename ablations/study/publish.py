"""Publishing a study's results in the repository, and reproducing them.

`pack` turns a finished results directory into what is committed: `runs.csv`, `timings.csv` and `manifest.json`
as they are; `curves.csv` and `probes.csv` with floats rounded to `DIGITS` significant digits and xz-compressed
(`*.csv.xz`, deterministic bytes); and `SHA256SUMS`, the hashes of the full-precision `runs.csv`, `curves.csv` and
`probes.csv`. With `delete_sources`, the cohort parts and the full-precision large files are removed (otherwise they
are kept).
A tuned study (`ablations.study.tuning`) is packed stage by stage: stage 1's ``tune/`` the same way, with its own
``tune/SHA256SUMS``; the study's `SHA256SUMS` also lists ``tune_choice.csv``, committed as it is. Packing again is
harmless: a directory already packed with `delete_sources` keeps its files and hashes.

`reproduce` reruns the study from its file into a fresh directory and checks that the new full-precision CSVs have
exactly the published hashes (bit-identical results) and that their packed form equals the committed files; for a
tuned study both stages and the choice (`published_stages`, `compare_study`). Bits are only promised on the same
machine class (`ablations.study.machine`): `machine_match` says whether the published manifest's class is this
machine's; if not, the CLI compares the results statistically (`ablations.report.agreement`).

A spot check (``reproduce --sample K``) reruns only K runs: a run's rows do not depend on the cohort it trains in
(DESIGN.md, invariant 1), so any subset retrains to the published rows. `sample_runs` draws them (seeded, stratified:
a probed run, every env, both stages of a tuned study), and `compare_sample` checks their rows, run by run: runs.csv
at full precision, curves.csv and probes.csv at the packed precision. A tuned study's choice is not checked by a
sample (it needs every stage-1 run): its stage-2 runs are those of the published choice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import lzma
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..config import RunConfig
from ..files import sha256_file, write_atomic, write_text_atomic
from .design import Study, expand
from .machine import MachineMatch, machine_match  # noqa: F401 - their home is `machine`; re-exported
from .results_format import SUMS, StoreError, read_text_table, require_complete, verify_sums
from .results_format import read_sums as _read_sums
from .store import ResultsDir
from .sequential import replay, runs_on_disk, wave_configs
from .tuning import CHOICE_FILE, TUNE_DIR, choice_from_file, stage1_configs, stage1_study, stage2_configs

DIGITS = 6
PACKED = ("curves.csv", "probes.csv")  # rounded and compressed
HASHED = ("runs.csv", "curves.csv", "probes.csv")


class PublishError(ValueError):
    """The directory cannot be packed or reproduced as asked."""


def rounded_csv(text: str, digits: int = DIGITS) -> str:
    """CSV text with every non-integer numeric cell rounded to `digits` significant digits (others verbatim)."""
    df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    return rounded_frame(df, digits).to_csv(index=False, lineterminator="\n")


def rounded_frame(df: pd.DataFrame, digits: int = DIGITS, like: pd.DataFrame | None = None) -> pd.DataFrame:
    """`rounded_csv` on a frame of text cells: a column is rounded when it is numeric (empty cells allowed) and not
    all integers, judged over `like` (default `df`; a sample's rows are rounded as the whole table they belong to)."""
    judged = df if like is None else like
    out = df.copy()
    for col in df.columns:
        values = pd.to_numeric(judged[col].replace("", np.nan), errors="coerce")
        is_num = values.notna() | (judged[col] == "")
        if not bool(is_num.all()) or bool(judged[col].str.fullmatch(r"-?\d*").all()):
            continue  # not numeric, or integers: keep the text
        text_col = df[col]
        arr = pd.to_numeric(text_col.replace("", np.nan), errors="coerce").to_numpy(dtype=np.float64)
        formatted = np.char.mod(f"%.{digits}g", arr).astype(object)
        formatted[np.isnan(arr) & (text_col == "").to_numpy()] = ""
        out[col] = formatted
    return out


def _xz(text: str) -> bytes:
    return lzma.compress(text.encode(), preset=9 | lzma.PRESET_EXTREME)


def read_text(path: Path) -> str:
    """A results CSV's text as published: its packed ``name.xz`` if there is one (what is committed; `pack` without
    --delete-sources keeps the full-precision file beside it), else `name` itself."""
    packed = path.with_name(path.name + ".xz")
    if packed.exists():
        return lzma.decompress(packed.read_bytes()).decode()
    if path.exists():
        return path.read_text(encoding="utf-8")
    raise PublishError(f"{path}: file not found (nor {packed.name})")


def pack(results_dir: str | Path, digits: int = DIGITS, *, delete_sources: bool = False) -> dict[str, int]:
    """Pack a finished results directory in place (see the module docstring) → bytes written per file (`SHA256SUMS`
    among them when written; stage 1's files of a tuned study as ``tune/<name>``).

    A transaction, directory by directory (stage 1 first): (1) the packed ``*.csv.xz`` from the full-precision
    files, atomically; (2) `SHA256SUMS`, atomically; (3) everything read back and checked (the sums, the packed
    files against their sources); only then (4) with `delete_sources`, the full-precision curves.csv / probes.csv
    and the cohort parts are removed. Killed at any step, the same command finishes it: a file whose source is gone
    keeps the hash its `SHA256SUMS` recorded (and its packed form must be there), so packing twice writes nothing
    (except a ``tune_choice.csv`` line its `SHA256SUMS` lacks). Refuses (PublishError, StoreError) a directory whose
    last `ablations run` did not finish (`results_format.require_complete`) before anything is written."""
    root = Path(results_dir)
    for name in ("runs.csv", "manifest.json"):
        if not (root / name).exists():
            raise PublishError(f"{root}: {name} is missing; pack a finished `ablations run` results directory")
    dirs = [(root / TUNE_DIR, f"{TUNE_DIR}/")] if (root / TUNE_DIR / "manifest.json").exists() else []
    dirs.append((root, ""))
    for folder, _ in dirs:
        if not os.access(folder, os.W_OK | os.X_OK):
            raise PublishError(f"{folder} is not writable by this user: nothing was packed; change its permissions "
                               "or pack a writable copy")
    fresh_locks = [folder / ".lock" for folder, _ in dirs if not (folder / ".lock").exists()]
    with contextlib.ExitStack() as held:
        for folder, _ in dirs:  # one writer per directory: not while `ablations run` writes it
            held.enter_context(ResultsDir(folder).lock())
            ResultsDir(folder).clean_incomplete()  # a killed write's temporary files
        try:
            choice = _choice_sums(root, ResultsDir(root).read_manifest() or {})
            require_complete(root)
        except StoreError as exc:
            raise PublishError(str(exc)) from None
        written = {}
        for folder, prefix in dirs:
            extra = choice if folder == root else {}
            written |= {prefix + name: size
                        for name, size in _pack_dir(folder, digits, delete_sources, extra).items()}
    for path in fresh_locks:  # the lock files this pack made: a packed directory is left as it was
        path.unlink(missing_ok=True)
    return written


def _choice_sums(root: Path, manifest: Mapping[str, Any]) -> dict[str, str]:
    """{tune_choice.csv: its sha256} when `root` holds one ({} otherwise). A tuned study's manifest (`tune`) requires
    it and stage 1's ``tune/``, and the file must be the one its `choice_file` record hashed when stage 2 started."""
    record = manifest.get("tune")
    choice = root / CHOICE_FILE
    if record:
        for path in (root / TUNE_DIR / "manifest.json", choice):
            if not path.is_file():
                raise PublishError(f"{path} is missing: {root}/manifest.json records a tuned study ([tune]), which "
                                   f"is published with stage 1 ({TUNE_DIR}/) and the choice ({CHOICE_FILE}); run the "
                                   "study to the end with `ablations run`, then pack it")
    if not choice.is_file():
        return {}
    digest = sha256_file(choice)
    want = (((record or {}).get("choice_file") or {}).get(CHOICE_FILE) or {}).get("sha256")
    if want and want != digest:
        raise PublishError(f"{choice}: sha256 {digest[:16]}… differs from {want[:16]}…, which the manifest "
                           "recorded when stage 2 started: the file was edited since. Run the study again with "
                           "`ablations run` (it rewrites the choice from stage 1's rows), then pack it")
    return {CHOICE_FILE: digest}


def _pack_dir(root: Path, digits: int, delete_sources: bool, extra: Mapping[str, str]) -> dict[str, int]:
    """Pack one results directory, steps (1)-(4) of `pack`; `extra` are hashes listed first in its SUMS."""
    old = read_sums(root) if (root / SUMS).is_file() else {}
    sums = dict(extra)
    for name in HASHED:
        if (root / name).is_file():
            sums[name] = sha256_file(root / name)
        elif name in old:  # its source was deleted by an earlier pack: the recorded hash stands
            sums[name] = old[name]
    written, packed = {}, {}
    for name in PACKED:  # (1)
        src, dst = root / name, root / (name + ".xz")
        if src.is_file():
            packed[name] = rounded_csv(src.read_text(encoding="utf-8"), digits)
            data = _xz(packed[name])
            if not dst.is_file() or dst.read_bytes() != data:
                write_atomic(dst, lambda fh, data=data: fh.write(data))
                written[name + ".xz"] = len(data)
        elif not (dst.is_file() and name in old):
            raise PublishError(f"{root}: {name} is missing, and it is not packed either ({name}.xz listed in "
                               f"{SUMS}); its data is not in this directory: run the study again")
    text = "".join(f"{h}  {n}\n" for n, h in sums.items())
    if not (root / SUMS).is_file() or (root / SUMS).read_text(encoding="utf-8") != text:  # (2)
        write_text_atomic(root / SUMS, text)
        written[SUMS] = len(text.encode())
    _verify_pack(root, sums, packed)  # (3)
    if delete_sources:  # (4)
        for name in PACKED:
            _remove(root / name)
        if (root / "cohorts").exists():  # out of sight first: a half-deleted part must never look done
            os.replace(root / "cohorts", root / ".cohorts.deleting")
        _remove(root / ".lock")
    _remove(root / ".cohorts.deleting")  # what a killed (4) left: its deletion was decided
    return written


def _verify_pack(root: Path, sums: Mapping[str, str], packed: Mapping[str, str]) -> None:
    """Read back what `pack` wrote: the SUMS file lists `sums`, every listed file there has its hash (or its packed
    form, once its source is gone), and each packed file decompresses to `packed`, the rounded source."""
    problems = [] if read_sums(root) == dict(sums) else [f"{SUMS} does not read back as written"]
    try:
        verify_sums(root)
    except StoreError as exc:
        problems.append(str(exc))
    for name, text in packed.items():
        if lzma.decompress((root / (name + ".xz")).read_bytes()).decode() != text:
            problems.append(f"{name}.xz does not decompress to the rounded {name}")
    if problems:
        raise PublishError(f"{root}: the packed files do not verify ({'; '.join(problems)}); nothing was deleted: "
                           "pack again")


def _remove(path: Path) -> None:
    """Delete a file or a directory tree (nothing if it is not there)."""
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def read_sums(root: str | Path) -> dict[str, str]:
    """file name → sha256, as listed in `root`'s SHA256SUMS (in its order); PublishError if there is none or it is
    malformed."""
    if not (Path(root) / SUMS).exists():
        raise PublishError(f"{Path(root)}: {SUMS} is missing; this directory was not packed with `ablations pack`")
    try:
        return _read_sums(root)
    except StoreError as exc:
        raise PublishError(str(exc)) from None


@dataclass
class FileCheck:
    name: str
    identical: bool
    detail: str


def compare(published: str | Path, fresh: str | Path, digits: int = DIGITS) -> list[FileCheck]:
    """Check a fresh (unpacked) results directory against a published (packed) one: every file its SHA256SUMS lists
    (tune_choice.csv too, for a tuned study), then the packed files. A file missing in the fresh run differs, and so
    does one whose published copy (runs.csv, tune_choice.csv: committed as they are) no longer has its listed hash."""
    pub, new = Path(published), Path(fresh)
    checks = []
    for name, digest in read_sums(pub).items():
        path = new / name
        # committed as is (runs.csv, tune_choice.csv)
        mine = sha256_file(pub / name) if (pub / name).is_file() else digest
        if mine != digest:
            checks.append(FileCheck(name, False, f"the published file was changed after packing: sha256 "
                                                 f"{mine[:16]}… is not its {SUMS} {digest[:16]}…"))
            continue
        if not path.exists():
            checks.append(FileCheck(name, False, "missing in the fresh run"))
            continue
        got = sha256_file(path)
        kind = "full-precision file" if name in HASHED else "file"
        checks.append(FileCheck(name, got == digest, f"sha256 matches the published {kind}"
                                if got == digest else f"sha256 {got[:16]}… differs from published {digest[:16]}…"))
    for name in PACKED:
        if not (pub / (name + ".xz")).exists():
            continue
        if not (new / name).exists() and not (new / (name + ".xz")).exists():
            checks.append(FileCheck(name + ".xz", False, "missing in the fresh run"))
            continue
        same = rounded_csv(read_text(new / name), digits) == read_text(pub / name)
        checks.append(FileCheck(name + ".xz", same, "packed form identical" if same else "packed form differs"))
    return checks


def compare_study(published: str | Path, fresh: str | Path, digits: int = DIGITS) -> list[FileCheck]:
    """`compare` for a whole study: a tuned study's stage 1 first (when ``published/tune`` is packed; its files named
    ``tune/<name>``), then the study's own directory (tune_choice.csv among its files)."""
    pub, new = Path(published), Path(fresh)
    checks = []
    if (pub / TUNE_DIR / SUMS).exists():
        checks = [dataclasses.replace(c, name=f"{TUNE_DIR}/{c.name}")
                  for c in compare(pub / TUNE_DIR, new / TUNE_DIR, digits)]
    return checks + compare(pub, new, digits)


def run_id_mismatch(published: Sequence[str] | None, expected: Sequence[str]) -> str:
    """'' if the published manifest lists exactly the run ids the study expands to, else a short description."""
    if published is None:
        return "the published manifest lists no run ids"
    missing, extra = set(expected) - set(published), set(published) - set(expected)
    if not missing and not extra:
        return ""
    return (f"{len(missing):,} of the study's {len(set(expected)):,} run ids are not in the published results, "
            f"which have {len(extra):,} others")


@dataclass(frozen=True)
class Stage:
    """One results directory a reproduction writes: where it is published, the study that trains it (a tuned study's
    stage 1: `tuning.stage1_study`) and its runs, in study order."""

    published: Path
    study: Study
    configs: list[RunConfig]

    @property
    def run_ids(self) -> list[str]:
        return [c.run_id for c in self.configs]


def published_stages(study: Study, published: str | Path) -> list[Stage]:
    """The stages a reproduction of `study` writes, with the runs `study` expands to now: the study's own directory;
    for a tuned study stage 1 (``tune/``, `tuning.stage1_configs`) and then stage 2 at the published choice
    (``tune_choice.csv``, `tuning.stage2_configs`); for a sequential study the runs of its waves, replayed from the
    published runs.csv (`sequential.replay`). PublishError if a tuned study's published directory lacks stage 1 or
    the choice, or the choice cannot be read."""
    pub = Path(published)
    if study.sequential is not None:  # its runs: the waves, replayed from the published rows
        state = replay(study, runs_on_disk(pub, study.sequential.metric))
        return [Stage(pub, study, wave_configs(study, state.counts))]
    if study.tune is None:
        return [Stage(pub, study, expand(study))]
    for path, what in ((pub / TUNE_DIR / "manifest.json", f"stage 1 ({TUNE_DIR}/)"),
                       (pub / CHOICE_FILE, f"the choice ({CHOICE_FILE})")):
        if not path.is_file():
            raise PublishError(f"{path} is missing: {study.path} is a tuned study ([tune]), published with {what}; "
                               f"run it to the end and pack both stages with `ablations pack {pub}`")
    try:
        stage2 = stage2_configs(study, choice_from_file(study, pub / CHOICE_FILE))
    except (KeyError, ValueError, IndexError) as exc:
        raise PublishError(f"{pub / CHOICE_FILE}: not a choice of {study.path}'s configs ({type(exc).__name__}: "
                           f"{exc}); allowed: the tune_choice.csv `ablations run` wrote (one row per config × "
                           "candidate, `chosen` True for one candidate per config)") from None
    return [Stage(pub / TUNE_DIR, stage1_study(study), stage1_configs(study)), Stage(pub, study, stage2)]


# ---- a spot check: a sample of the runs ------------------------------------------------------------------------
def sample_runs(stages: Sequence[Sequence[RunConfig]], k: int, seed: int = 0) -> list[list[RunConfig]]:
    """`k` runs drawn from the union of the stages' runs → each stage's drawn runs, in study order.

    Deterministic (`numpy.random.default_rng(seed)`, without replacement). Strata come first, in this order, each
    by one uniform draw among its runs if no run drawn so far is in it and draws remain: the runs with probes on
    (`probe_every > 0`), if the study has any; each env_id (study order); each stage of a tuned study. So a sample
    holds a probed run, every env once `k` ≥ the number of envs, and both stages when `k` leaves room. The rest is a
    uniform draw from the runs not drawn yet. ValueError unless 1 ≤ k ≤ the number of runs."""
    flat = [(i, cfg) for i, configs in enumerate(stages) for cfg in configs]
    if not 1 <= k <= len(flat):
        raise ValueError(f"k={k} is invalid; allowed: 1 <= k <= {len(flat)} (the runs)")
    strata = [[j for j, (_, c) in enumerate(flat) if c.probe_every > 0]]
    envs = dict.fromkeys(c.env_id for _, c in flat)
    strata += [[j for j, (_, c) in enumerate(flat) if c.env_id == env] for env in envs]
    if len(stages) > 1:
        strata += [[j for j, (i, _) in enumerate(flat) if i == stage] for stage in range(len(stages))]
    rng = np.random.default_rng(seed)
    drawn: list[int] = []
    for members in strata:
        if members and len(drawn) < k and not set(members) & set(drawn):
            drawn.append(int(rng.choice(members)))
    rest = np.array([j for j in range(len(flat)) if j not in set(drawn)], dtype=int)
    drawn += [int(j) for j in rng.choice(rest, size=k - len(drawn), replace=False)]
    return [[flat[j][1] for j in sorted(drawn) if flat[j][0] == stage] for stage in range(len(stages))]


@dataclass
class RunCheck:
    """One sampled run, fresh vs published: its runs.csv row at full precision, its curves.csv and probes.csv rows
    at the packed precision (`DIGITS`), each identical or not; `rows` counts the rows that differ of each file."""

    run_id: str
    runs: bool
    curves: bool
    probes: bool
    rows: dict[str, tuple[int, int]]  # file → (rows that differ, rows compared: the longer side's)
    final_return: tuple[float, float]  # (published, fresh); NaN where a row or cell is missing

    @property
    def identical(self) -> bool:
        return self.runs and self.curves and self.probes

    @property
    def final_return_rel_diff(self) -> float:
        """|fresh − published| / |published| of final_return (NaN if either is missing; inf if 0 is published and
        the fresh value is not 0)."""
        pub, new = self.final_return
        if math.isnan(pub) or math.isnan(new) or pub == new:
            return math.nan if math.isnan(pub) or math.isnan(new) else 0.0
        return abs(new - pub) / abs(pub) if pub else math.inf


def compare_sample(published: str | Path, fresh: str | Path, run_ids: Sequence[str],
                   digits: int = DIGITS) -> list[RunCheck]:
    """Check the rows of `run_ids` in a fresh results directory that trained just those runs against the published
    (packed) one, run by run. runs.csv (committed at full precision): the run's row, cell for cell as text, which for
    files written alike (the same header) is its CSV line byte for byte. curves.csv and probes.csv (committed
    rounded, ``*.csv.xz``): the run's fresh rows rounded as `pack` rounds (`rounded_frame`, each column judged over
    the whole published table with the fresh rows) equal its published rows as text. A different header makes every
    run differ in that file. PublishError if a published file is missing."""
    pub, new = Path(published), Path(fresh)
    ids = list(run_ids)
    same: dict[str, dict[str, list[bool]]] = {}
    tables: dict[str, tuple[pd.DataFrame, pd.DataFrame]] = {}
    for name in HASHED:
        old = _published_table(pub, name)
        mine = read_text_table(new / name) if (new / name).exists() else pd.DataFrame(columns=old.columns)
        aligned = list(mine.columns) == list(old.columns)
        if aligned:
            mine = mine[mine["run_id"].isin(set(ids))]
            if name in PACKED:
                mine = rounded_frame(mine, digits, like=pd.concat([old, mine], ignore_index=True))
        same[name] = _rows_same(old, mine, ids, aligned, at_least=1 if name == "runs.csv" else 0)
        tables[name] = (old, mine)
    old_runs, new_runs = tables["runs.csv"]
    return [RunCheck(rid, *(all(same[name][rid]) for name in HASHED),
                     {name: (same[name][rid].count(False), len(same[name][rid])) for name in HASHED},
                     (_cell(old_runs, rid, "final_return"), _cell(new_runs, rid, "final_return"))) for rid in ids]


def _published_table(root: Path, name: str) -> pd.DataFrame:
    """A published CSV as text cells: its packed ``name.xz`` if there is one (what is committed), else ``name``."""
    packed = root / (name + ".xz")
    text = lzma.decompress(packed.read_bytes()).decode() if packed.exists() else read_text(root / name)
    return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_filter=False)


def _rows_by_run(df: pd.DataFrame, ids: Sequence[str]) -> dict[str, list[tuple[str, ...]]]:
    if "run_id" not in df:
        return {}
    sel = df[df["run_id"].isin(set(ids))]
    return {rid: list(g.itertuples(index=False, name=None)) for rid, g in sel.groupby("run_id", sort=False)}


def _rows_same(old: pd.DataFrame, mine: pd.DataFrame, ids: Sequence[str], aligned: bool,
               at_least: int) -> dict[str, list[bool]]:
    """run_id → for each of its rows (in file order; as many as the longer side has, at least `at_least`) whether the
    published and the fresh row hold the same text; every row differs unless the headers are `aligned`."""
    a, b = _rows_by_run(old, ids), _rows_by_run(mine, ids)
    out = {}
    for rid in ids:
        x, y = a.get(rid, []), b.get(rid, [])
        n = max(at_least, len(x), len(y))
        out[rid] = [i < len(x) and i < len(y) and x[i] == y[i] for i in range(n)] if aligned else [False] * max(1, n)
    return out


def _cell(df: pd.DataFrame, run_id: str, column: str) -> float:
    """The number in `column` of `run_id`'s first row; NaN if there is none."""
    if "run_id" not in df or column not in df:
        return math.nan
    cells = df.loc[df["run_id"] == run_id, column]
    value = pd.to_numeric(cells.iloc[0] if len(cells) else "", errors="coerce")
    return float(value) if pd.notna(value) else math.nan
