"""`ablations pack` and `ablations reproduce`: publish a study's results in the repository, and check them."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Column, Table
from rich.text import Text

from . import tuned
from .run import _console, _fail, _study_or_exit


def pack(results_dir: Annotated[Path, typer.Argument(help="A finished results directory (results/<study>).")],
         digits: Annotated[int, typer.Option(min=3, max=17, help="Significant digits kept in the packed CSVs.")] = 6,
         delete_sources: Annotated[bool, typer.Option(
             "--delete-sources", help="Also delete the full-precision curves.csv, probes.csv and the cohort parts "
                                      "(what is committed is then only the packed files).")] = False,
         ) -> None:
    """Pack results for committing: hashes of the full-precision CSVs, rounded + xz-compressed curves and probes.

    A tuned study's stage 1 (results/<study>/tune/) is packed too, with its own SHA256SUMS; the study's SHA256SUMS
    also lists tune_choice.csv. Packing again is harmless: an already packed directory is kept as it is."""
    from ..study.publish import SUMS, PublishError
    from ..study.publish import pack as do_pack
    from ..study.tuning import TUNE_DIR

    console = _console()
    try:
        written = do_pack(results_dir, digits, delete_sources=delete_sources)
    except PublishError as exc:
        raise _fail(console, str(exc), 2) from None
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
    elif delete_sources and written:
        console.print("no full-precision curves.csv, probes.csv or cohorts/ left (--delete-sources): commit what is "
                      "there")


def reproduce(
    study: Annotated[str, typer.Argument(help="The study file (studies/<name>.toml) or its name.")],
    results: Annotated[Optional[Path], typer.Option(help="The published results [default: results/<name>].")] = None,
    workers: Annotated[Optional[int], typer.Option(min=1, help="Worker processes [default: all cores].")] = None,
    keep: Annotated[Optional[Path], typer.Option(help="Write the fresh results here (kept) instead of a temp dir.")] = None,
    alpha: Annotated[float, typer.Option(min=0.001, max=0.2, help="Significance level of the statistical "
                                         "comparison (another machine class).")] = 0.05,
    margin: Annotated[float, typer.Option(min=0.01, help="Equivalence margin of the overall shift, in within-config "
                                          "SDs (another machine class).")] = 0.5,
) -> None:
    """Rerun a published study and check it: bit-identical; or, on another machine class, statistically the same.

    A tuned study ([tune]) reruns both stages and checks stage 1 (tune/), tune_choice.csv and stage 2; on another
    machine class it compares stage 2 statistically and shows how many configs chose the published candidate (another
    choice is not a failure by itself).

    Exit 0: bit-identical, or (another machine class) the statistical comparison agrees. Exit 1: the study no longer
    expands to the published run ids (said before training), the bits differ on the same machine class (a
    regression), or the statistical comparison disagrees. Exit 2: the published results are not packed, or (a tuned
    study) lack tune/ or tune_choice.csv."""
    from ..study.executors import make_executor, run_study
    from ..study.progress import RichProgress
    from ..study.publish import PublishError, compare_study, expected_run_ids, machine_match, run_id_mismatch
    from ..study.store import ResultsDir, StoreError
    from ..study.tuning import run_tuned

    console = _console()
    spec = _study_or_exit(console, study)
    published = results or Path("results") / spec.name
    if not (published / "SHA256SUMS").exists():
        raise _fail(console, f"{published}: no SHA256SUMS; publish it first with `ablations pack {published}`", 2)
    try:
        stages = expected_run_ids(spec, published)  # a tuned study: stage 1 (tune/), then stage 2
    except PublishError as exc:
        raise _fail(console, str(exc), 2) from None
    manifests = []
    for where, _ in stages:
        if not (where / "SHA256SUMS").exists():
            raise _fail(console, f"{where}: no SHA256SUMS; publish it first with `ablations pack {published}`", 2)
        try:
            manifests.append(ResultsDir(where).read_manifest() or {})
        except (StoreError, ValueError, OSError) as exc:
            raise _fail(console, f"{where}/manifest.json: cannot be read ({exc})", 2) from None
    for (where, expected), manifest in zip(stages, manifests):
        mismatch = run_id_mismatch(manifest.get("run_ids"), expected)
        if mismatch:  # a rerun could not match: say so now instead of after training the whole study
            raise _fail(console, f"{where} was not made from the runs {spec.path} expands to now ({mismatch}): the "
                        "study file, or RunConfig's fields and defaults, changed since it was published (e.g. a new "
                        f"axis). Republish it: ablations run {spec.path} && ablations pack results/{spec.name}", 1)
    with tempfile.TemporaryDirectory(prefix=f"reproduce_{spec.name}_") as tmp:
        out = keep or Path(tmp) / spec.name
        ex = make_executor("local", workers=workers, imports=spec.imports,
                           import_paths=spec.import_paths)
        console.print(f"reproducing {spec.name} into {out} and comparing with {published}")
        if spec.tune is not None:
            run_tuned(spec, out, ex, progress=lambda stage: RichProgress(console, f"{spec.name} {stage}"))
        else:
            run_study(spec, out, ex, progress=RichProgress(console, spec.name))
        try:
            checks = compare_study(published, out)
        except PublishError as exc:
            raise _fail(console, str(exc), 2) from None
        table = Table("file", "identical", "detail", title=f"{spec.name}: fresh run vs {published}")
        for c in checks:
            table.add_row(c.name, Text("yes", "green") if c.identical else Text("NO", "bold red"), c.detail)
        console.print(table)
        if all(c.identical for c in checks):
            console.print(Text.assemble(("bit-identical", "bold green"), " to the published results."))
            return
        matches = [machine_match(manifest, ResultsDir(out / where.relative_to(published)).read_manifest())
                   for (where, _), manifest in zip(stages, manifests)]
        match = next((m for m in matches if not m.same), matches[-1])
        if spec.tune is not None:
            tuned.print_choices(console, spec, published, out)
        if match.same:
            raise _fail(console, f"not bit-identical, but {match.describe()}: same code paths, other bits — a "
                        "regression (or a change of the study or the package since publishing).", 1)
        console.print(f"Not bit-identical, as can happen across machines: {match.describe()}. "
                      "Comparing statistically instead"
                      + (" (stage 2, the evaluation runs; a different choice is not a failure by itself: near the "
                         "optimum other draws of the tuning seeds may pick a neighbouring candidate, but the "
                         "evaluation must still agree)." if spec.tune is not None else "."))
        agreed = _statistical_check(console, published, out, alpha=alpha, margin=margin)
    if not agreed:
        raise typer.Exit(code=1)


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
                                    f": no config differs, the overall shift is inside the margin and no verdict "
                                    f"is reversed (exit 0)."))
    else:
        console.print(Text.assemble(("statistically different", "bold red"), ":"))
        for problem in agr.problems:
            console.print(f"- {problem}")
    return agr.agree
