"""The sequential section of a sequential study's report, its Summary line and its Methods paragraph: writes the
tables `sequential.compute` made (`sequential_waves`, `sequential`), the anytime-valid intervals and, separately
labelled, the fixed-n ones."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ablations.report.model import Report
from ablations.report.metrics import METRICS
from ablations.report.sequential import sequential_info
from ablations.report.text import fmt, md_table
from ablations.study.sequential import CORRECTION, CS_METHOD, RULE


def _interval(low: float, high: float) -> str:
    if not (np.isfinite(low) and np.isfinite(high)):
        return "(−∞, ∞)"
    return f"[{fmt(low)}, {fmt(high)}]".replace("-", "−")


def summary_line(rep: Report) -> list[str]:
    """The Summary's line on the design (none for a study that was not sequential)."""
    info = sequential_info(rep)
    if info is None or "sequential_waves" not in rep.tables:
        return []
    waves = rep.tables["sequential_waves"]
    return [f"- **Design: sequential** (adaptive seeding): {len(waves)} wave(s), {info['min']} to {info['max']} seeds "
            f"a config; decided by anytime-valid confidence sequences (see "
            "[Sequential design](#sequential-design-anytime-valid))"]


def findings_note(rep: Report) -> list[str]:
    """The line that opens Key findings of a sequential study: what follows is fixed-n, the verdicts are below."""
    if sequential_info(rep) is None or "sequential" not in rep.tables:
        return []
    return ["*A sequential design: the findings below use fixed-n intervals on the runs as trained, which do not "
            "account for adding seeds after looking; read them as descriptive. The verdicts the study decided, "
            "with anytime-valid intervals, are in [Sequential design](#sequential-design-anytime-valid).*", ""]


def sequential_section(rep: Report) -> list[str]:
    """The "## Sequential design (anytime-valid)" section (no lines for a study that was not sequential)."""
    info = sequential_info(rep)
    if info is None or "sequential" not in rep.tables:
        return []
    waves, d = rep.tables["sequential_waves"], rep.tables["sequential"]
    metric = METRICS.get(info.get("metric", "final_return"), (info.get("metric"),))[0]
    c = rep.tables["sequential_cost"].iloc[0]
    lines = [
        "## Sequential design (anytime-valid)", "",
        f"This study was **sequential** (`[sequential]`: min {info['min']}, step {info['step']}, at most "
        f"{info['max']} seeds a config): every config trained its first {info['min']} seeds, then each wave added "
        f"seeds only to the configs of a contrast still undecided ({', '.join(info['families'])} "
        f"{'family' if len(info['families']) == 1 else 'families'}, {info['contrasts']} contrasts). "
        f"It stopped because {info.get('reason') or 'of its rule'}. The number of seeds depended on the results, so "
        "fixed-n confidence intervals and p-values are not valid for these contrasts; the verdicts here come from "
        "anytime-valid confidence sequences, valid at every look whatever the stopping. Every other section of "
        "this report uses fixed-n methods on the runs as trained (configs may have different numbers of seeds): "
        "read their intervals as descriptive, and quote the verdicts of this section.", "",
        md_table(waves.assign(complete=waves["complete"].map({True: "yes", False: "no"}),
                              budget_steps=[f"{int(b):,}" for b in waves["budget_steps"]]),
                 {"wave": "wave", "seeds": "seeds a config", "configs": "configs grown", "runs": "runs",
                  "budget_steps": "env-step budget", "complete": "complete"}), "",
        f"**Cost**: {c['runs']:,} runs and {c['budget_steps']:,} env steps of budget, against {c['fixed_runs']:,} "
        f"runs and {c['fixed_budget_steps']:,} env steps for every config at every seed (the fixed design with the "
        f"same maximum): {c['runs'] / max(1, c['fixed_runs']):.0%} of its runs, "
        f"{c['budget_steps'] / max(1, c['fixed_budget_steps']):.0%} of its env steps.", "",
        f"### Decisions on {metric}", "",
        "*Anytime-valid interval*: the contrast's confidence sequence at level 1 − α/K (K contrasts in its family), "
        "intersected over its looks, at the look that decided it (or its last); *fixed-n t-interval*: the "
        "ordinary t-interval at the same seeds and level, shown for comparison only — **it is valid only for a "
        "number of seeds fixed in advance, not under this design**. A contrast \"A vs B\" helps when A is higher.",
        "", md_table(_decisions(d), {"family": "family", **({"env": "env"} if (d["env"] != "").any() else {}),
                                    "contrast": "contrast", "look": "decided at wave", "n": "seeds",
                                    "estimate": "estimate", "_cs": "anytime-valid interval", "verdict": "verdict",
                                    "_fixed": "fixed-n t-interval (not valid here)",
                                    "fixed_verdict": "fixed-n verdict"}), "",
        "Every look of every contrast: [`tables/sequential_looks.csv`](tables/sequential_looks.csv).", ""]
    return lines


def _decisions(d: pd.DataFrame) -> pd.DataFrame:
    return d.assign(_cs=[_interval(lo, hi) for lo, hi in zip(d["cs_low"], d["cs_high"])],
                    _fixed=[_interval(lo, hi) for lo, hi in zip(d["fixed_low"], d["fixed_high"])],
                    look=[f"{lk}" + ("" if v != "undecided" else " (undecided)") for lk, v in zip(d["look"],
                                                                                              d["verdict"])])


def sequential_methods(rep: Report) -> list[str]:
    """The Methods paragraph of a sequential study (no lines otherwise)."""
    info = sequential_info(rep)
    if info is None or "sequential" not in rep.tables:
        return []
    margins = info.get("margin", {}) if isinstance(info.get("margin"), dict) else {}
    values = margins.get("value") or {}
    shown = ", ".join(f"{fmt(v)}" + (f" ({e})" if e else "") for e, v in values.items())
    return ["", f"**Sequential design.** Stopping rule: {RULE}. Interval: {CS_METHOD}. Family-wise: {CORRECTION}. "
            f"Equivalence margin: {margins.get('rule', 'the default')}, resolved on "
            f"{margins.get('resolved_on', 'the first wave')}: {shown or 'n/a'}. Assumes the per-seed contrasts are "
            "i.i.d. normal (seed-blocked by common random numbers); runs that failed or diverged are missing seeds "
            f"of the contrasts that read their config. Decided on `{info.get('metric', 'final_return')}` "
            "(runs.csv)."]
