"""Export a results directory's learning curves to TensorBoard event files or Weights & Biases offline runs.

Owns the export's run names (`run_name`: a run's config levels and seed, one directory per run), the scalars
exported (`SCALARS`: curves.csv's per-update columns, plotted against `env_steps`), each run's hparams (its config
fields from runs.csv, with its `final_return` and `eval_return` as the hparams metrics), and the errors raised when
the optional package is missing (`ExportError`, naming the extra to install). The results are read by the report's
reader (`load.load_results`: validated, checksums verified); nothing here computes a statistic.

It lives in `report` because it is another output of a loaded results directory, as the markdown report is, and
needs nothing above the report's reader; `cli.export` is its command. Neither tensorboard nor wandb is a dependency
of the core: each is imported only when its export is asked for (`pip install "ablations[tensorboard]"`,
`pip install "ablations[wandb]"`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from ablations.config import CONFIG_COLUMNS
from ablations.report.load import Results, load_results

#: curves.csv columns exported per update, each under the tag `train/<column>`, at step = the update's `env_steps`.
SCALARS = ["return_mean", "return_std", "length_mean", "policy_loss", "value_loss", "entropy", "grad_norm",
           "episodes"]
#: The tag prefix of the per-update scalars.
PREFIX = "train/"
#: runs.csv columns recorded as each run's hparams metrics (the TensorBoard HParams dashboard's columns).
RUN_METRICS = ["final_return", "eval_return"]


class ExportError(RuntimeError):
    """An export cannot be made (its optional package is missing, or the output directory is taken); the message
    says what to do."""


def run_name(run: dict[str, Any], factors: list[str]) -> str:
    """A run's directory name: `factor=level` for each of the study's factors, then `seed=<seed>`, joined by ","
    ("baseline=mean,returns=rtg,seed=3"; a single-config directory: "seed=3"). "/" in a level (an env id such as
    "ALE/Pong-v5") becomes "-", so one run is one directory."""
    parts = [f"{f}={run[f]}" for f in factors] + [f"seed={int(run['seed'])}"]
    return ",".join(parts).replace("/", "-").replace("\\", "-")


def run_names(results: Results) -> dict[str, str]:
    """run_id → `run_name` for every run of `results`; a name two runs share (a tuned study's candidates) gains
    ",run=<run_id>"."""
    names = {str(r["run_id"]): run_name(r, results.factors) for r in results.runs.to_dict("records")}
    counts = pd.Series(list(names.values())).value_counts()
    return {rid: (f"{n},run={rid}" if counts[n] > 1 else n) for rid, n in names.items()}


def _plain(value: Any) -> bool | int | float | str:
    """A runs.csv cell as an hparam value (bool, int, float or str; missing → "")."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)


def hparams(run: dict[str, Any]) -> dict[str, bool | int | float | str]:
    """The run's config fields (runs.csv's `RunConfig` columns) as hparams."""
    return {c: _plain(run[c]) for c in CONFIG_COLUMNS if c in run}


def run_metrics(run: dict[str, Any]) -> dict[str, float]:
    """The run's `final_return` and `eval_return` (those present and finite), under `hparams/<name>`."""
    out = {}
    for c in RUN_METRICS:
        value = pd.to_numeric(pd.Series([run.get(c)]), errors="coerce").iloc[0]
        if pd.notna(value):
            out[f"hparams/{c}"] = float(value)
    return out


def scalar_rows(curves: pd.DataFrame) -> Iterator[tuple[str, int, float]]:
    """(tag, env_steps, value) for every update of one run's curve rows and every exported column present; missing
    values (a run without a critic has no value_loss) are left out."""
    rows = curves.sort_values("update", kind="stable")
    for col in SCALARS:
        if col not in rows.columns:
            continue
        for step, value in zip(rows["env_steps"].to_numpy(), pd.to_numeric(rows[col], errors="coerce").to_numpy()):
            if math.isfinite(float(value)):
                yield PREFIX + col, int(step), float(value)


def _runs(results: Results) -> Iterator[tuple[str, dict[str, Any], pd.DataFrame]]:
    names = run_names(results)
    by_run = dict(tuple(results.curves.groupby("run_id", sort=False)))
    for run in results.runs.to_dict("records"):
        rid = str(run["run_id"])
        yield names[rid], run, by_run.get(rid, results.curves.iloc[:0])


def _check_empty(out: Path, names: list[str]) -> None:
    taken = sorted(n for n in names if (out / n).exists())
    if taken:
        raise ExportError(f"{out} already holds exported runs ({', '.join(taken[:3])}{', …' if len(taken) > 3 else ''})"
                          "; a second export would mix event files: choose another directory, or remove the old one")


def export_tensorboard(results_dir: str | Path | Results, out_dir: str | Path, *, with_hparams: bool = True
                       ) -> list[Path]:
    """Write one TensorBoard run per run of the results into `out_dir`/<run_name>/: the `SCALARS` per update at step
    = env_steps (float32, as TensorBoard stores scalars), and (with_hparams) the run's config and final metrics for
    the HParams dashboard. Returns the run directories, in runs.csv order."""
    try:
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams as hparams_summary
    except ImportError:
        raise ExportError("the TensorBoard export needs the `tensorboard` package: pip install "
                          "\"ablations[tensorboard]\"") from None
    results = results_dir if isinstance(results_dir, Results) else load_results(results_dir)
    out = Path(out_dir)
    runs = list(_runs(results))
    _check_empty(out, [name for name, _, _ in runs])
    written = []
    for name, run, curves in runs:
        with SummaryWriter(log_dir=str(out / name)) as writer:
            for tag, step, value in scalar_rows(curves):
                writer.add_scalar(tag, value, global_step=step)
            if with_hparams:
                metrics = run_metrics(run)
                for summary in hparams_summary(hparams(run), metrics):
                    writer.file_writer.add_summary(summary)
                for tag, value in metrics.items():
                    writer.add_scalar(tag, value)
        written.append(out / name)
    return written


def export_wandb(results_dir: str | Path | Results, out_dir: str | Path, *, project: str | None = None
                 ) -> list[str]:
    """Write one Weights & Biases offline run per run of the results under `out_dir` (`wandb sync` uploads them
    later): name = `run_name`, config = the run's hparams, group = its config label, one `wandb.log` per update with
    the `SCALARS` and `env_steps` (the x-axis: `define_metric`). Returns the run names."""
    try:
        import wandb
    except ImportError:
        raise ExportError("the W&B export needs the `wandb` package: pip install \"ablations[wandb]\"") from None
    results = results_dir if isinstance(results_dir, Results) else load_results(results_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = []
    for name, run, curves in _runs(results):
        wb = wandb.init(mode="offline", dir=str(out), project=project or results.study, name=name,
                        group=str(run["config"]), config=hparams(run))
        wb.define_metric("env_steps")
        wb.define_metric(PREFIX + "*", step_metric="env_steps")
        steps: dict[int, dict[str, float]] = {}
        for tag, step, value in scalar_rows(curves):
            steps.setdefault(step, {"env_steps": step})[tag] = value
        for step in sorted(steps):
            wb.log(steps[step])
        wb.summary.update({k.removeprefix("hparams/"): v for k, v in run_metrics(run).items()})
        wb.finish()
        names.append(name)
    return names
