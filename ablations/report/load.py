"""Read and validate a results directory (`results/<study>/`) into one `Results` object.

Owns: the required columns of each CSV, the `ReportError` raised when a file or a column is missing, the study's
factors and their level order, the config label of each run, and the reference config. Nothing here computes a
statistic; the compute modules (`bootstrap`, `comparisons`, `effects`, `gradvar`, …) take the frames this module
returns.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ablations.config import AXES, CONFIG_COLUMNS, VANILLA
from ablations.probes.rows import PROBE_REQUIRED_COLUMNS


class ReportError(ValueError):
    """The results directory cannot be reported on; the message names the file and the column(s)."""


RUN_COLUMNS = ["run_id", "status", "env_steps", "updates", "final_return", "seed"]
CURVE_COLUMNS = ["run_id", "update", "env_steps", "episodes", "return_mean", "return_std", "length_mean",
                 "policy_loss", "value_loss", "entropy", "grad_norm"]
PROBE_COLUMNS = PROBE_REQUIRED_COLUMNS  # required on read (probes/rows.py: the one definition)
TIMING_COLUMNS = ["run_id", "wall_s"]
#: Columns that must be numeric (after reading) in each file; a non-numeric entry is a malformed file.
NUMERIC = {
    "runs.csv": ["env_steps", "updates", "seed"],
    "curves.csv": ["update", "env_steps", "return_mean"],
    "probes.csv": ["update", "env_steps", "total_var"],
    "timings.csv": ["wall_s"],
}
#: Order in which factors are listed when the manifest does not say.
FACTOR_ORDER = ["returns", "baseline", "normalize", "entropy_coef"]
#: Config field columns never treated as factors, even when they vary.
NOT_FACTORS = {"seed"}


#: The factor that makes a study multi-env: its levels are strata (`report.across`), not an ablation axis.
ENV = "env_id"


@dataclass
class Results:
    """A validated results directory. `runs` gains `config` (the label) and one string column per factor."""

    path: Path
    study: str
    runs: pd.DataFrame
    curves: pd.DataFrame
    probes: pd.DataFrame | None
    timings: pd.DataFrame | None
    manifest: dict[str, Any]
    factors: list[str]
    levels: dict[str, list[str]]
    reference: dict[str, str]
    reference_note: str
    notes: list[str] = field(default_factory=list)

    @property
    def configs(self) -> list[str]:
        """Config labels present in runs.csv, in level order."""
        return config_order(self.runs, self.factors, self.levels)

    @property
    def reference_label(self) -> str:
        return config_label(self.reference, self.factors)

    @property
    def done(self) -> pd.DataFrame:
        return self.runs[self.runs["status"] == "done"]


def level_label(value: Any) -> str:
    """A factor level as the label every table, config label and figure uses: floats with `%g` (0.0 → "0",
    "0.010" → "0.01"), empty → "".

    Not `study.design.format_level`, on purpose: that one spells a level in a study-file error message as the TOML
    value reads (`repr(float)`: 1 → "1.0"), and `study` cannot import the report. The two rules differ ("1.0" vs
    "1"), so they carry distinct names; the report's labels (and every committed report) use this one."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, np.floating)):
        return f"{float(value):g}"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (list, tuple)):
        return "-".join(map(str, value))
    text = str(value)
    try:  # "0.010" and "0.01" are the same level
        return f"{float(text):g}" if text.strip() and not text.strip().isalpha() else text
    except ValueError:
        return text


def format_column(values: pd.Series) -> pd.Series:
    """`level_label` applied to a column, once per distinct value."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    formatted = np.array([level_label(u) for u in uniques] + [""], dtype=object)  # code -1 (missing) → ""
    return pd.Series(formatted[codes], index=values.index, dtype=object)


def restrict(results: Results, runs: pd.DataFrame, factors: list[str]) -> Results:
    """`results` with only `runs` (a subset of its runs) and their curves, probes and timings, and only `factors`
    (a subset of its own, e.g. without env_id)."""
    ids = set(runs["run_id"])

    def keep(df: pd.DataFrame | None) -> pd.DataFrame | None:
        return None if df is None else df[df["run_id"].isin(ids)]

    return dataclasses.replace(results, runs=runs, curves=keep(results.curves), probes=keep(results.probes),
                               timings=keep(results.timings), factors=factors,
                               levels={f: results.levels[f] for f in factors})


def config_label(levels: dict[str, Any], factors: list[str]) -> str:
    """`returns/baseline/normalize/entropy_coef` levels joined with "/", like the probe estimator labels."""
    return "/".join(level_label(levels[f]) for f in factors) if factors else "all"


def read_typed_table(path: Path, required: list[str], *, optional: bool = False) -> pd.DataFrame | None:
    """Read one CSV with pandas' typed columns (numbers as numbers: the report's reader; `study.store.read_table`
    is the text reader); a missing file (unless optional), a missing column or a non-numeric column is a
    `ReportError`."""
    source = path
    if not path.exists() and path.with_name(path.name + ".xz").exists():
        source = path.with_name(path.name + ".xz")  # a published (packed) results directory
    if not source.exists():
        if optional:
            return None
        raise ReportError(f"{path}: file not found (a results directory needs runs.csv and curves.csv)")
    try:
        df = pd.read_csv(source, keep_default_na=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ReportError(f"{path}: cannot be parsed as CSV ({exc})") from exc
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ReportError(f"{path.name}: missing column(s) {missing} (in {path})")
    bad = []
    for col in NUMERIC.get(path.name, []):
        if col in df.columns and not pd.api.types.is_numeric_dtype(df[col]):
            converted = pd.to_numeric(df[col], errors="coerce")
            if converted.isna().sum() > df[col].isna().sum():
                bad.append(col)
            else:
                df[col] = converted
    if bad:
        raise ReportError(f"{path.name}: non-numeric values in column(s) {bad} (in {path})")
    return df


def read_manifest(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ReportError(f"{path}: expected a JSON object at the top level")
    return data


def study_spec(manifest: dict[str, Any]) -> dict[str, Any]:
    spec = manifest.get("study")
    return spec if isinstance(spec, dict) else {}


def infer_factors(runs: pd.DataFrame, manifest: dict[str, Any]) -> list[str]:
    """Manifest `study.factors` keys if present, else config columns (not seed) with more than one value."""
    declared = study_spec(manifest).get("factors")
    if isinstance(declared, dict) and declared:
        missing = [f for f in declared if f not in runs.columns]
        if missing:
            raise ReportError(f"runs.csv: missing factor column(s) {missing} named in manifest.json study.factors")
        return list(declared)
    candidates = [c for c in CONFIG_COLUMNS if c in runs.columns and c not in NOT_FACTORS]
    varying = [c for c in candidates if format_column(runs[c]).nunique() > 1]
    return sorted(varying, key=lambda c: (FACTOR_ORDER.index(c) if c in FACTOR_ORDER else len(FACTOR_ORDER),
                                          CONFIG_COLUMNS.index(c)))


def _level_key(factor: str, level: str) -> tuple[Any, ...]:
    if factor in AXES and level in AXES[factor]:
        return (0, AXES[factor].index(level), "")
    try:
        return (1, float(level), "")
    except ValueError:
        return (2, 0.0, level)


def level_order(runs: pd.DataFrame, factors: list[str], manifest: dict[str, Any]) -> dict[str, list[str]]:
    """Levels of each factor: the manifest's order, then the axis order (`config.AXES`), then numeric, then text."""
    declared = study_spec(manifest).get("factors")
    declared = declared if isinstance(declared, dict) else {}
    out = {}
    for f in factors:
        present = set(format_column(runs[f]))
        order = [level_label(v) for v in declared.get(f, []) if level_label(v) in present]
        rest = sorted(present - set(order), key=lambda lv: _level_key(f, lv))
        out[f] = list(dict.fromkeys(order + rest))
    return out


def config_order(runs: pd.DataFrame, factors: list[str], levels: dict[str, list[str]]) -> list[str]:
    combos = runs[factors].drop_duplicates() if factors else pd.DataFrame(index=[0])
    keys = sorted((tuple(levels[f].index(row[f]) for f in factors), config_label(row, factors))
                  for row in combos.to_dict("records"))
    return [label for _, label in keys]


def choose_reference(runs: pd.DataFrame, factors: list[str], levels: dict[str, list[str]],
                     manifest: dict[str, Any]) -> tuple[dict[str, str], str]:
    """The reference config: manifest `study.report.reference`, else vanilla REINFORCE, else the first config."""
    report = study_spec(manifest).get("report")
    declared = report.get("reference") if isinstance(report, dict) else None
    present = set(runs["config"])
    first = config_order(runs, factors, levels)[0]
    first_levels = dict(zip(factors, first.split("/"))) if factors else {}
    if isinstance(declared, dict) and declared:
        ref = {f: level_label(declared.get(f, first_levels[f])) for f in factors}
        if config_label(ref, factors) in present:
            return ref, "the reference named in the manifest (study.report.reference)"
    vanilla = {f: level_label(VANILLA[f]) if f in VANILLA else first_levels[f] for f in factors}
    rows = runs[runs["config"] == config_label(vanilla, factors)]
    # the unswept axes must be vanilla too: a study that sweeps only `normalize` trains rtg/value/... everywhere
    unswept = {a: sorted(set(format_column(rows[a]))) for a in VANILLA if a not in factors and a in rows.columns}
    if len(rows) and all(v == [level_label(VANILLA[a])] for a, v in unswept.items()):
        return vanilla, "vanilla REINFORCE (returns=full, baseline=none, normalize=none, entropy_coef=0)"
    why = ("is not in the data" if not len(rows) else "is not in the data: the axes this study does not sweep are "
           + ", ".join(f"{a}={'/'.join(v)}" for a, v in unswept.items() if v != [level_label(VANILLA[a])]))
    return first_levels, (f"the first config in level order ({first}), because the vanilla config "
                          f"(returns=full, baseline=none, normalize=none, entropy_coef=0) {why}")


def load_results(results_dir: str | Path) -> Results:
    """Read runs.csv, curves.csv (required), probes.csv, timings.csv, manifest.json (optional) and validate them."""
    path = Path(results_dir)
    if not path.is_dir():
        raise ReportError(f"{path}: results directory not found")
    manifest = read_manifest(path / "manifest.json")
    from ablations.study.results_format import StoreError, require_complete, verify_combined

    try:  # a directory whose combine did not finish, or whose files changed since they were recorded, is refused
        if isinstance(manifest, dict) and "run_ids" in manifest:  # a directory `ablations run` writes
            require_complete(path)
        else:
            verify_combined(path, manifest)
    except StoreError as exc:
        raise ReportError(str(exc)) from None
    runs = read_typed_table(path / "runs.csv", RUN_COLUMNS)
    curves = read_typed_table(path / "curves.csv", CURVE_COLUMNS)
    probes = read_typed_table(path / "probes.csv", PROBE_COLUMNS, optional=True)
    timings = read_typed_table(path / "timings.csv", TIMING_COLUMNS, optional=True)
    assert runs is not None and curves is not None
    if runs.empty:
        raise ReportError(f"{path / 'runs.csv'}: no runs")
    if runs["run_id"].duplicated().any():
        dup = sorted(runs.loc[runs["run_id"].duplicated(), "run_id"].astype(str).unique())[:5]
        raise ReportError(f"runs.csv: duplicated run_id values in column 'run_id': {dup}")
    runs = runs.copy()
    runs["run_id"] = runs["run_id"].astype(str)
    curves = curves.assign(run_id=curves["run_id"].astype(str))
    runs["status"] = runs["status"].astype(str).str.strip().str.lower()
    if "error" not in runs.columns:
        runs["error"] = ""
    runs["error"] = pd.Series(["" if pd.isna(e) else str(e) for e in runs["error"]], index=runs.index, dtype=object)
    factors = infer_factors(runs, manifest)
    for f in factors:
        runs[f] = format_column(runs[f])
    levels = level_order(runs, factors, manifest)
    runs["config"] = [config_label(r, factors) for r in runs[factors].to_dict("records")] if factors else "all"
    reference, note = choose_reference(runs, factors, levels, manifest)
    if probes is not None:
        fields = ("returns", "baseline", "normalize", "entropy_coef")
        probes = probes.assign(run_id=probes["run_id"].astype(str), **{f: format_column(probes[f]) for f in fields})
        # the label is optional: without it, build "returns/baseline/normalize/entropy_coef" from the settings
        probes["estimator"] = (probes["estimator"].astype(str) if "estimator" in probes.columns
                               else probes["returns"] + "/" + probes["baseline"] + "/" + probes["normalize"] + "/"
                               + probes["entropy_coef"])
    if timings is not None:
        timings = timings.assign(run_id=timings["run_id"].astype(str))
    study = str(study_spec(manifest).get("name") or (runs["study"].dropna().astype(str).iloc[0]
                                                      if "study" in runs and runs["study"].notna().any()
                                                      else path.name))
    return Results(path=path, study=study, runs=runs, curves=curves, probes=probes, timings=timings,
                   manifest=manifest, factors=factors, levels=levels, reference=reference, reference_note=note)
