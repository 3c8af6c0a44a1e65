"""The tuning section of a tuned study's report and its line in Methods: writes the tables `tuning.compute` made
(`tune_choice`, `tune_sensitivity`, `untuned_verdicts`) and links the sensitivity figure when `build` drew it."""

from __future__ import annotations

from typing import Any

from ablations.report.model import Report
from ablations.report.text import fmt, md_table
from ablations.report.tuning import candidates, tune_info
from ablations.study.tuning import CHOICE_FILE, TUNE_DIR


def tuning_section(rep: Report) -> list[str]:
    """The "## Tuning" section (no lines for an untuned study)."""
    info = tune_info(rep.results)
    if info is None or "tune_choice" not in rep.tables:
        return []
    fields, _ = candidates(info)
    return _section(rep, info, fields, str(info.get("metric", "auc")))


def tuning_methods(rep: Report) -> list[str]:
    """The tuning line of the Methods section (no lines for an untuned study)."""
    info = tune_info(rep.results)
    if info is None or "tune_choice" not in rep.tables:
        return []
    fields, labels = candidates(info)
    return _methods(rep, info, fields, str(info.get("metric", "auc")), labels)


def _section(rep: Report, info: dict[str, Any], fields: list[str], metric: str) -> list[str]:
    t = rep.tables
    lines = ["## Tuning", "",
             f"Each config's {', '.join(f'`{f}`' for f in fields)} was chosen on {len(info['seeds'])} tuning seeds "
             f"by the highest mean {metric}; every statistic above and below (except this section) uses the "
             f"evaluation runs only, on fresh seeds. *Tuning mean* is the winner's score on the tuning seeds (biased "
             "upwards: it is a maximum); *evaluation mean* is the same metric on the evaluation seeds.", "",
             md_table(t["tune_choice"].assign(
                 _eval=[f"{_fmt(r['eval_mean'])} [{_fmt(r['eval_ci_low'])}, {_fmt(r['eval_ci_high'])}]"
                        for _, r in t["tune_choice"].iterrows()]),
                 {"config": "config", "chosen": "chosen " + "/".join(fields), "tuning_mean": "tuning mean",
                  "tuning_n": "tuning seeds", "runner_up": "runner-up", "runner_up_mean": "runner-up mean",
                  "_eval": "evaluation mean [95% CI]", "eval_n": "evaluation seeds", "at_edge": "at the grid's edge"},
                 {"tuning_n": str, "eval_n": str}), ""]
    edge = t["tune_choice"][t["tune_choice"]["at_edge"] != ""]
    if len(edge):
        lines += [f"**At the grid's edge:** {len(edge)} of {len(t['tune_choice'])} configs chose the smallest or "
                  f"largest candidate ({', '.join(sorted(set(edge['at_edge'])))}); their best value may lie outside "
                  "the grid, so their comparison is at a possibly untuned value: widen the grid to be sure.", ""]
    if "tune_sensitivity" in rep.figures:
        lines += [f"![Sensitivity]({rep.figures['tune_sensitivity']})", "",
                  f"*Sensitivity: mean {metric} per candidate and config on the tuning seeds (95% CIs); the chosen "
                  "candidate is filled. Flat curves mean the verdicts do not depend on the choice; crossing curves "
                  "mean an untuned comparison would depend on the value picked.*", ""]
    if "untuned_verdicts" in t and len(t["untuned_verdicts"]):
        v = t["untuned_verdicts"]
        lines += ["### Untuned view: verdicts at each candidate", "",
                  "Each candidate as a level (stage 1's runs on the tuning seeds, the candidate held fixed for every "
                  f"config); verdicts on {metric}:", "",
                  md_table(v.assign(_ci=[f"[{_fmt(a)}, {_fmt(b)}]" for a, b in zip(v["ci_low"], v["ci_high"])]),
                           {"candidate": "/".join(fields), "factor": "factor", "level": "level", "vs": "vs",
                            "verdict": "verdict", "partners": "depends on", "estimate": "estimate",
                            "_ci": "95% CI"}), ""]
    return lines


def _fmt(x: Any) -> str:
    return fmt(float(x))


def _methods(rep: Report, info: dict[str, Any], fields: list[str], metric: str, labels: list[str]) -> list[str]:
    seeds = info["seeds"]
    eval_seeds = sorted(int(s) for s in rep.results.done["seed"].unique())
    return [f"- **Tuning (two stages).** Stage 1 trained every config at each candidate of {', '.join(fields)} "
            f"({', '.join(labels)}) on {len(seeds)} tuning seeds ({_span(seeds)}), probes off. The choice per config: "
            f"{info.get('rule', '')}; the metric is {metric}, computed from stage 1's curves as this report computes "
            f"it. Stage 2 trained each config at its chosen candidate on the evaluation seeds ({_span(eval_seeds)}), "
            "disjoint from the tuning seeds (checked when the study is loaded), so the winner's selection does not "
            "inflate the comparison (maximization bias). All comparisons, effects and verdicts use stage 2 only. The "
            f"choice is recorded in `{CHOICE_FILE}` (its checksum in the manifest) and is a pure function of stage 1's "
            "runs.csv and curves.csv (`ablations.study.tuning.choose`); stage 1's results are in "
            f"`{TUNE_DIR}/` (`ablations report <results>/{TUNE_DIR}` reports them as a factorial study: the untuned "
            "view)."]


def _span(seeds: list[int]) -> str:
    seeds = sorted(int(s) for s in seeds)
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}–{seeds[-1]}"
    return ", ".join(map(str, seeds))
