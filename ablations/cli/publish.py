"""`ablations pack` and `ablations reproduce`: publish a study's results in the repository, and check them (the whole
study, or a spot check of K runs: `reproduce --sample K`)."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.table import Column, Table
from rich.text import Text

from . import tuned
from .run import _console, _fail, _study_or_exit

if TYPE_CHECKING:
    from ..study.design import Study
    from ..study.publish import FileCheck, MachineMatch, RunCheck, Stage


def pack(results_dir: Annotated[Path, typer.Argument(help="A finished results directory (results/<study>).")],
         digits: Annotated[int, typer.Option(min=3, max=17, help="Significant digits kept in the packed CSVs.")] = 6,
         delete_sources: Annotated[bool, typer.Option(
             "--delete-sources", help="Also delete the full-precision curves.csv, probes.csv and the cohort parts "
                                      "(what is committed is then only the packed files).")] = False,
         ) -> None:
    """Pack results for committing: hashes of the full-precision CSVs, rounded + xz-compressed curves and probes.

    A tuned study's stage 1 (results/<study>/tune/) is packed too, with its own SHA256SUMS; the study's SHA256SUMS
    also lists tune_choice.csv. The packed files and SHA256SUMS are written and verified before any source is
    deleted; a killed pack is finished by running the same command again. Packing again is harmless: an already
    packed directory is kept as it is. Exit 2: the directory's last `ablations run` did not finish, a file does not
    match its checksum, or the directory cannot be written (nothing deleted)."""
    from ..study.publish import SUMS, PublishError
    from ..study.publish import pack as do_pack
    from ..study.results_format import StoreError
    from ..study.tuning import TUNE_DIR

    console = _console()
    try:
        written = do_pack(results_dir, digits, delete_sources=delete_sources)
    except (PublishError, StoreError) as exc:
        raise _fail(console, str(exc), 3 if "in use" in str(exc) else 2) from None
    except OSError as exc:
        raise _fail(console, f"{results_dir}: cannot pack ({exc.strerror or exc}"
                    f"{': ' + str(exc.filename) if exc.filename else ''}); no source was deleted: fix it and run "
                    "the same command again", 2) from None
    folders = [results_dir / TUNE_DIR, results_dir] if (results_dir / TUNE_DIR / "manifest.json").exists() \
        else [results_dir]
    for name, size in written.items():
        if Path(name).name != SUMS:
            console.print(f"{results_dir}/{name}: {size / 2**20:.2f} MiB")
    sums = [f"{results_dir}/{name}" for name in written if Path(name).name == SUMS]
    console.print(f"{', '.join(sums)} written" if sums else f"{results_dir} is already packed: nothing written")
    kept = [str(p) for folder in folders for p in (folder / "curves.csv", folder / "probes.csv", folder / "cohorts")
            if p.exists()]
    if kept:
        console.print(f"the full-precision {', '.join(kept)} are kept: add --delete-sources to delete them before "
                      "committing")
    elif delete_sources:
        console.print("no full-precision curves.csv, probes.csv or cohorts/ left (--delete-sources): commit what is "
                      "there")


def reproduce(
    study: Annotated[str, typer.Argument(help="The study file (studies/<name>.toml) or its name.")],
    results: Annotated[Optional[Path], typer.Option(help="The published results [default: results/<name>].")] = None,
    workers: Annotated[Optional[int], typer.Option(min=1, help="Worker processes [default: all cores].")] = None,
    keep: Annotated[Optional[Path],
                    typer.Option(help="Write the fresh results here (kept) instead of a temp dir.")] = None,
    alpha: Annotated[float, typer.Option(min=0.001, max=0.2, help="Significance level of the statistical "
                                         "comparison (another machine class).")] = 0.05,
    margin: Annotated[float, typer.Option(min=0.01, help="Equivalence margin of the overall shift, in within-config "
                                          "SDs (another machine class).")] = 0.5,
    sample: Annotated[Optional[int], typer.Option(
        "--sample", metavar="K", help="A spot check: retrain only K runs (1 ≤ K ≤ the study's runs) and check their "
                                      "rows [default: the whole study]. Drawn from all the study's runs (a tuned "
                                      "study: the union of both stages' runs, not in proportion), with at least one "
                                      "probed run, one run of each env (when K ≥ the envs) and of each stage (when "
                                      "K leaves room).")] = None,
    sample_seed: Annotated[int, typer.Option("--sample-seed", metavar="S", min=0,
                                             help="Seed of the --sample draw (numpy default_rng).")] = 0,
) -> None:
    """Rerun a published study and check it: bit-identical; or, on another machine class, statistically the same.

    A tuned study ([tune]) reruns both stages and checks stage 1 (tune/), tune_choice.csv and stage 2; on another
    machine class it compares stage 2 statistically and shows how many configs chose the published candidate (another
    choice is not a failure by itself).

    Exit 0: bit-identical, or (another machine class) the statistical comparison agrees. Exit 1: the study no longer
    expands to the published run ids (said before training), the bits differ on the same machine class (a
    regression), or the statistical comparison disagrees. Exit 2: the published results are not packed, or (a tuned
    study) lack tune/ or tune_choice.csv.

    --sample K, a spot check in minutes: K runs drawn as --sample says (seeded by --sample-seed) are retrained alone
    (a run's rows do not depend on its cohort) and their rows checked, run by run: runs.csv at full precision,
    curves.csv and probes.csv at the packed precision (timings.csv, wall times, is not compared); a tuned study's
    stage 2 runs at the published choice, which a sample does not check. Exit 0: the K runs are bit-identical, or
    they differ on another machine class (K runs cannot be compared statistically with any power: the spot check
    cannot decide, says how many rows differ and by how much final_return, and to run the full reproduce; --alpha
    and --margin are not used). Exit 1: the run ids changed (before training) or the rows differ on the same machine
    class. Exit 2: also K outside 1..the study's runs (nothing trained)."""
    from ..study.executors import make_executor
    from ..study.progress import RichProgress
    from ..study.publish import PublishError, compare_study
    from ..study.stages import plan_study, run_plan

    console = _console()
    spec = _study_or_exit(console, study)
    published, stages, manifests = _published(console, spec, results)
    if sample is not None:
        _reproduce_sample(console, spec, published, stages, manifests, sample, sample_seed, workers=workers, keep=keep)
        return
    with tempfile.TemporaryDirectory(prefix=f"reproduce_{spec.name}_") as tmp:
        out = keep or Path(tmp) / spec.name
        ex = make_executor("local", workers=workers, imports=spec.imports,
                           import_paths=spec.import_paths)
        console.print(f"reproducing {spec.name} into {out} and comparing with {published}")
        run_plan(plan_study(spec, out, workers=ex.workers), ex,
                 progress=lambda stage: RichProgress(console, f"{spec.name} {stage}".rstrip()))
        try:
            checks = compare_study(published, out)
        except PublishError as exc:
            raise _fail(console, str(exc), 2) from None
        agreed = _full_verdict(console, spec, published, out, checks, stages, manifests, alpha=alpha, margin=margin)
    if not agreed:
        raise typer.Exit(code=1)


def _full_verdict(console, spec: Study, published: Path, out: Path, checks: list[FileCheck],
                  stages: list[Stage], manifests: list[dict[str, Any]], *, alpha: float, margin: float) -> bool:
    """Show the file checks of a full reproduction and decide: bit-identical (True); the same machine class with
    other bits (exit 1); another machine class: the statistical comparison's verdict."""
    from ..study.publish import machine_match
    from ..study.store import ResultsDir

    table = Table("file", "identical", "detail", title=f"{spec.name}: fresh run vs {published}")
    for c in checks:
        table.add_row(c.name, _yes(c.identical), c.detail)
    console.print(table)
    if all(c.identical for c in checks):
        console.print(Text.assemble(("bit-identical", "bold green"), " to the published results."))
        return True
    matches = [machine_match(manifest, ResultsDir(out / stage.published.relative_to(published)).read_manifest())
               for stage, manifest in zip(stages, manifests)]
    match = next((m for m in matches if not m.same), matches[-1])
    if spec.tune is not None:
        tuned.print_choices(console, spec, published, out)
    if match.same:
        raise _fail(console, f"not bit-identical, but {match.summary()}: same code paths, other bits — a "
                    "regression (or a change of the study or the package since publishing).", 1)
    console.print(f"Not bit-identical, as can happen across machines: {match.summary()}. "
                  "Comparing statistically instead"
                  + (" (stage 2, the evaluation runs; a different choice is not a failure by itself: near the "
                     "optimum other draws of the tuning seeds may pick a neighbouring candidate, but the "
                     "evaluation must still agree)." if spec.tune is not None else "."))
    return _statistical_check(console, published, out, alpha=alpha, margin=margin)


def _yes(identical: bool) -> Text:
    return Text("yes", "green") if identical else Text("NO", "bold red")


def _published(console, spec: Study, results: Path | None) -> tuple[Path, list[Stage], list[dict[str, Any]]]:
    """`reproduce`'s checks before training: the published directory (`--results`), its stages and their manifests;
    exit 2 if it is not packed or lacks a stage, exit 1 if the study no longer expands to its run ids."""
    from ..study.publish import PublishError, published_stages, run_id_mismatch
    from ..study.results_format import StoreError, require_complete
    from ..study.store import ResultsDir

    published = results or Path("results") / spec.name
    if not (published / "SHA256SUMS").exists():
        raise _fail(console, f"{published}: no SHA256SUMS; publish it first with `ablations pack {published}`", 2)
    try:
        stages = published_stages(spec, published)  # a tuned study: stage 1 (tune/), then stage 2
    except PublishError as exc:
        raise _fail(console, str(exc), 2) from None
    try:  # the published files are what SHA256SUMS (and the manifest) recorded, every stage of them
        require_complete(published)
    except StoreError as exc:
        raise _fail(console, str(exc), 2) from None
    manifests = []
    for stage in stages:
        if not (stage.published / "SHA256SUMS").exists():
            raise _fail(console, f"{stage.published}: no SHA256SUMS; publish it first with `ablations pack "
                        f"{published}`", 2)
        try:
            manifests.append(ResultsDir(stage.published).read_manifest() or {})
        except (StoreError, ValueError, OSError) as exc:
            raise _fail(console, f"{stage.published}/manifest.json: cannot be read ({exc})", 2) from None
    for stage, manifest in zip(stages, manifests):
        mismatch = run_id_mismatch(manifest.get("run_ids"), stage.run_ids)
        if mismatch:  # a rerun could not match: say so now instead of after training the whole study
            raise _fail(console, f"{stage.published} was not made from the runs {spec.path} expands to now "
                        f"({mismatch}): the study file, or RunConfig's fields and defaults, changed since it was "
                        f"published (e.g. a new axis). Republish it: ablations run {spec.path} && ablations pack "
                        f"results/{spec.name}", 1)
    return published, stages, manifests


def _reproduce_sample(console, spec: Study, published: Path, stages: list[Stage], manifests: list[dict[str, Any]],
                      k: int, seed: int, *, workers: int | None, keep: Path | None) -> None:
    """`reproduce --sample K`: draw K runs (`publish.sample_runs`), retrain them stage by stage through
    `driver.run_study`, print a row per run (`publish.compare_sample`) and end as `reproduce` says."""
    from ..report.load import config_label
    from ..study.driver import run_study
    from ..study.executors import make_executor
    from ..study.progress import RichProgress
    from ..study.publish import PublishError, compare_sample, machine_match, sample_runs
    from ..study.results_format import StoreError
    from ..study.store import ResultsDir

    total = sum(len(stage.configs) for stage in stages)
    labels = ["stage 1 (tuning)", "stage 2 (evaluation)"] if spec.tune is not None else [""]
    if not 1 <= k <= total:
        per_stage = (" (" + " + ".join(f"{len(s.configs)} in {label}" for s, label in zip(stages, labels)) + ")"
                     if len(stages) > 1 else "")
        raise _fail(console, f"--sample {k} is invalid; allowed: 1 ≤ K ≤ {total}, the runs of {spec.name}"
                    f"{per_stage}; leave --sample out to rerun the whole study", 2)
    drawn = sample_runs([stage.configs for stage in stages], k, seed)
    factors = [*spec.factors, *(spec.tune.candidates if spec.tune is not None else ())]
    table = Table(Column("run_id", no_wrap=True), *(["stage"] if len(stages) > 1 else []),
                  Column(f"config ({'/'.join(factors)})" if factors else "config", overflow="fold"), "seed",
                  "runs.csv", "curves", "probes",
                  title=f"{spec.name}: {k} sampled runs (--sample-seed {seed}), fresh vs {published}: rows identical?")
    checks, matches = [], []
    with tempfile.TemporaryDirectory(prefix=f"reproduce_{spec.name}_") as tmp:
        out = keep or Path(tmp) / spec.name
        ex = make_executor("local", workers=workers, imports=spec.imports, import_paths=spec.import_paths)
        console.print(f"reproducing {k} of the {total} runs of {spec.name} (--sample {k} --sample-seed {seed}) into "
                      f"{out} and comparing their rows with {published}")
        for number, (stage, configs, label, manifest) in enumerate(zip(stages, drawn, labels, manifests), 1):
            if not configs:
                continue
            fresh = out / stage.published.relative_to(published)
            try:
                run_study(stage.study, fresh, ex, configs=configs,
                          progress=RichProgress(console, f"{spec.name} {label}".rstrip()))
                stage_checks = compare_sample(stage.published, fresh, [c.run_id for c in configs])
            except (StoreError, PublishError) as exc:
                raise _fail(console, str(exc), 2) from None
            matches.append(machine_match(manifest, ResultsDir(fresh).read_manifest()))
            for cfg, c in zip(configs, stage_checks):
                bad = {name: f" ({n_bad} of {n} rows)" if n_bad else "" for name, (n_bad, n) in c.rows.items()}
                table.add_row(c.run_id, *([str(number)] if len(stages) > 1 else []),
                              config_label({f: getattr(cfg, f) for f in factors}, factors), str(cfg.seed),
                              _yes(c.runs), _yes(c.curves) + bad["curves.csv"],
                              "—" if c.probes and not cfg.probe_every else _yes(c.probes) + bad["probes.csv"])
            checks += stage_checks
    console.print(table)
    _sample_verdict(console, spec, checks, matches)


def _sample_verdict(console, spec: Study, checks: list[RunCheck], matches: list[MachineMatch]) -> None:
    """The end of `reproduce --sample`: bit-identical (return); rows differ on the same machine class (exit 1); or on
    another class, how many rows differ and by how much final_return, and that a sample cannot decide (return)."""
    differ = [c for c in checks if not c.identical]
    if not differ:
        console.print(Text.assemble(("bit-identical", "bold green"), f": the {len(checks)} sampled runs are "
                                    "bit-identical to the published ones (rows of runs.csv at full precision, "
                                    "curves/probes at the packed precision)."))
        return
    rows = ", ".join(f"{sum(c.rows[name][0] for c in checks)} of {sum(c.rows[name][1] for c in checks)} {name} rows"
                     for name in checks[0].rows)
    worst = max((c.final_return_rel_diff for c in checks if not math.isnan(c.final_return_rel_diff)), default=math.nan)
    summary = (f"{len(differ)} of the {len(checks)} sampled runs differ ({rows}); the largest relative difference "
               f"of final_return is {worst:.3g}")
    match = next((m for m in matches if not m.same), matches[-1])
    if match.same:
        raise _fail(console, f"{summary}. Not bit-identical, but {match.summary()}: same code paths, other bits — a "
                    "regression (or a change of the study or the package since publishing).", 1)
    console.print(f"{summary}. Not bit-identical, as can happen across machine classes: {match.summary()}. A sample "
                  f"of {len(checks)} runs cannot be compared statistically with any power, so this spot check cannot "
                  f"decide (exit 0): run the full `ablations reproduce {spec.path}` for the statistical comparison.")


def _statistical_check(console, published: Path, fresh: Path, *, alpha: float, margin: float) -> bool:
    """Print `report.agreement`'s three checks; True if the results agree."""
    from ..report.agreement import agreement
    from ..report.load import ReportError, load_results

    try:
        pub, new = load_results(published), load_results(fresh)
        agr = agreement(pub, new, alpha=alpha, margin=margin)
    except (ReportError, ValueError) as exc:
        raise _fail(console, f"cannot compare the results statistically: {exc}", 2) from None
    t = Table("n", "published", "fresh", "p (Mann–Whitney)", "p_holm", "differs",
              title=f"1. {agr.metric} per config (Holm over {len(agr.configs)} configs, α = {alpha})")
    t.columns.insert(0, Column("config", overflow="fold", min_width=max([8, *(len(c) for c in agr.configs["config"])])))
    for r in agr.configs.itertuples():
        t.add_row(r.config, f"{r.n_published}/{r.n_fresh}", f"{r.mean_published:.4g}", f"{r.mean_fresh:.4g}",
                  f"{r.p_mannwhitney:.3g}", f"{r.p_holm:.3g}", Text("YES", "bold red") if r.differs else "no")
    console.print(t)
    s = agr.shift
    console.print(f"2. overall shift (fresh − published, seed-blocked): {s['estimate']:.4g} "
                  f"[{s['ci_low']:.4g}, {s['ci_high']:.4g}] ({s['ci_level']:.0%} CI, {s['n_seeds']} seeds); "
                  f"equivalence margin ±{s['margin']:.4g} ({margin} × within-config SD {s['sd_within']:.4g}): "
                  + ("inside" if s["equivalent"] else "NOT inside"))
    v = agr.verdicts
    flips = v[v["verdict_published"] != v["verdict_fresh"]]
    console.print(f"3. report verdicts on {agr.metric}: {len(v) - len(flips)} of {len(v)} the same, "
                  f"{int(v['reversed'].sum())} reversed, {len(flips) - int(v['reversed'].sum())} significant in "
                  "one only (by chance near the threshold; not a failure)")
    if agr.agree:
        console.print(Text.assemble(("statistically the same", "bold green"),
                                    ": no config differs, the overall shift is inside the margin and no verdict "
                                    "is reversed (exit 0)."))
    else:
        console.print(Text.assemble(("statistically different", "bold red"), ":"))
        for problem in agr.problems:
            console.print(f"- {problem}")
    return agr.agree
