"""Study files: load and validate a TOML study, expand it to `RunConfig`s.

A study file (``studies/*.toml``)::

    name = "quick"                      # the results directory is results/<name>
    description = "..."
    seeds = 3                           # seeds 0..2, or an explicit list [0, 5, 7]
    imports = ["my_env"]                # optional: modules that register custom gymnasium ids (the study
                                        # file's folder is importable); importing runs the module's code
    [fixed]                             # any RunConfig field
    env_id = "CartPole-v1"
    [factors]                           # any RunConfig field -> list of levels; crossed in file order
    baseline = ["none", "mean"]
    [[exclude]]                         # optional: drop runs matching every key of a rule
    baseline = "none"
    normalize = ["returns", "advantages"]
    [sample]                            # optional: K configs drawn from the grid (seeded), before seeds
    k = 10
    seed = 0
    [env."LunarLander-v3"]              # optional: fixed fields for one level of env_id (a multi-env study)
    total_steps = 200000
    [sequential]                        # optional: seeds in waves (study.sequential_spec, study.sequential): `min`
    min = 5                             # seeds first, then `step` more for the configs of each undecided contrast,
    step = 5                            # up to the `seeds` above
    [tune]                              # optional: tune field(s) per config on separate seeds (study.tune_spec,
    policy_lr = [1e-3, 3e-3, 1e-2]      # study.tuning): stage 1 trains config × candidate × tuning seed, stage 2
    seeds = 5                           # each config at its chosen candidate on the evaluation seeds
    metric = "auc"
    [tune.env."LunarLander-v3"]         # optional: that env's own candidates (study.tune_spec)
    policy_lr = [3e-4, 1e-3, 3e-3]
    [report]                            # optional: passed through to the manifest for ablations.report
    reference = {returns = "full", baseline = "none", normalize = "none", entropy_coef = 0.0}
    references = {"Pendulum-v1" = -200.0}  # optional: the score normalized to 1 per env (default: reward_threshold)
    random_episodes = 100               # optional: episodes of the uniform-random policy per env (score 0); set,
                                        # a single-env study measures it too (the report's dashed line)
    [[report.anchors]]                  # optional: a published number beside the best config (report.anchors;
    env_id = "CartPole-v1"              # keys: study.sections.ANCHOR_KEYS)

Everything is validated by `load_study` (every `RunConfig` built, every environment described once) before anything
is written, and every error is a `StudyError` naming the file, the key and what is allowed; each section has its own
validator in `study.sections` (and `[tune]` in `study.tune_spec`), this module checks the study as a whole. `grid`,
`point_fields`, `seed_fields` (the probed-seed rule) and `expand` are pure functions: the same study gives
the same runs in the same order, with the same ids, in any process. `format_level` is the study's one text of a
level ("1.0" for 1 and 1.0, "64-64" for a layer list).

Over 450 lines, kept whole for now: loading, validating and expanding a study file share one grammar (the fields,
the `[[exclude]]` rules, the per-env tables) and one error vocabulary. Grouping the expanded runs into cohorts is
`study.cohorts`.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..config import ConfigError, RunConfig, field_names
from .sections import (StudyError, norm_level, parse_env, parse_exclude, parse_imports, parse_report, parse_sample,
                       parse_study_seeds, section_table)
from .contrasts import contrasts
from .sequential_spec import SequentialSpec, parse_sequential
from .tune_spec import TuneSpec, parse_tune


TOP_LEVEL_KEYS = ("name", "description", "seeds", "probe_seeds", "imports", "fixed", "factors", "exclude", "sample",
                  "report", "env", "tune", "sequential")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Study:
    """A parsed, validated study file."""

    name: str
    path: str
    description: str = ""
    fixed: Mapping[str, Any] = field(default_factory=dict)
    factors: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)  # in file order
    seeds: tuple[int, ...] = (0,)
    exclude: tuple[Mapping[str, tuple[Any, ...]], ...] = ()
    sample: Mapping[str, int] | None = None
    report: Mapping[str, Any] = field(default_factory=dict)
    imports: tuple[str, ...] = ()
    probe_seeds: int | None = None  # probes only on each config's first k seeds (None: on every seed)
    import_paths: tuple[str, ...] = ()  # folders put on sys.path before `imports` (the study file's own)
    tune: TuneSpec | None = None  # [tune]: per-config tuning in two stages (study.tuning)
    env: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # env_id → fixed fields for that env only
    sequential: SequentialSpec | None = None  # [sequential]: seeds added in waves (study.sequential)

    @property
    def env_ids(self) -> list[str]:
        """The study's environments, in file order (one unless env_id is a factor)."""
        return [str(e) for e in self.factors.get("env_id", (self.fixed.get("env_id", RunConfig().env_id),))]

    def spec(self) -> dict[str, Any]:
        """The study as parsed, JSON-ready (for the manifest)."""
        return {
            "name": self.name, "path": self.path, "description": self.description,
            "fixed": {k: _jsonable(v) for k, v in self.fixed.items()},
            "factors": {k: [_jsonable(v) for v in vs] for k, vs in self.factors.items()},
            "seeds": list(self.seeds),
            "exclude": [{k: [_jsonable(v) for v in vs] for k, vs in rule.items()} for rule in self.exclude],
            "sample": dict(self.sample) if self.sample else None,
            "report": _jsonable(dict(self.report)),
            "imports": list(self.imports),
            **({"import_paths": list(self.import_paths)} if self.import_paths else {}),
            "probe_seeds": self.probe_seeds,
            **({"env": {e: {k: _jsonable(v) for k, v in t.items()} for e, t in self.env.items()}} if self.env else {}),
            **({"tune": self.tune.spec()} if self.tune else {}),
            **({"sequential": self.sequential.spec()} if self.sequential else {}),
        }


def study_from_spec(spec: Mapping[str, Any]) -> Study:
    """The `Study` a manifest's `study` record (`Study.spec()`) describes, as parsed (not validated again, nothing
    imported), for readers of a results directory that need its grid and runs (a sequential study's report). A
    tuned study's [tune] is not rebuilt."""
    seq = spec.get("sequential")
    return Study(name=spec["name"], path=spec.get("path", ""), description=spec.get("description", ""),
                 fixed=dict(spec.get("fixed") or {}),
                 factors={k: tuple(v) for k, v in (spec.get("factors") or {}).items()},
                 seeds=tuple(spec.get("seeds") or (0,)),
                 exclude=tuple({k: tuple(norm_level(x) for x in v) for k, v in rule.items()}
                               for rule in spec.get("exclude") or ()),
                 sample=spec.get("sample"), report=dict(spec.get("report") or {}),
                 imports=tuple(spec.get("imports") or ()), probe_seeds=spec.get("probe_seeds"),
                 import_paths=tuple(spec.get("import_paths") or ()), env=dict(spec.get("env") or {}),
                 sequential=SequentialSpec(**{**seq, "families": tuple(seq["families"])}) if seq else None)


# ---- loading ---------------------------------------------------------------------------------------------------
def load_study(path: str | Path) -> Study:
    """Parse and fully validate a study file; raise `StudyError` on the first problem."""
    path = Path(path)
    where = str(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StudyError(f"{where}: no such study file") from None
    except IsADirectoryError:
        raise StudyError(f"{where}: is a directory; allowed: a study file (studies/<name>.toml)") from None
    except UnicodeDecodeError as exc:
        raise StudyError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start}); save the study file as "
                         "UTF-8 (TOML files are UTF-8)") from None
    except OSError as exc:
        raise StudyError(f"{where}: cannot read the study file ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise StudyError(f"{where}: TOML syntax error: {exc}") from None
    return parse_study(raw, where=where, base_dir=path.resolve().parent)


#: Most runs a study may expand to (a guard against a typo such as `seeds = 1000000`).
MAX_RUNS = 100_000


def parse_study(raw: Mapping[str, Any], *, where: str = "study", base_dir: str | Path | None = None) -> Study:
    """Validate a parsed TOML mapping → `Study` (also builds every run and describes every environment).

    `base_dir` (the study file's folder) is put on `sys.path` before `imports` are imported, so an env module that
    sits beside the study file needs no PYTHONPATH."""
    unknown = [k for k in raw if k not in TOP_LEVEL_KEYS]
    if unknown:
        raise StudyError(f"{where}: unknown top-level key(s) {unknown}; allowed: {list(TOP_LEVEL_KEYS)}")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise StudyError(f"{where}: key 'name' = {name!r} is invalid; allowed: a non-empty string of letters, digits, "
                         "'_', '.', '-' (it names the results directory)")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise StudyError(f"{where}: key 'description' must be a string")
    if base_dir is not None:  # the study's folder is importable: env modules beside the study file need no PYTHONPATH
        from ..envs.registry import import_modules
        import_modules([], [base_dir])
    imports = parse_imports(raw.get("imports", []), where, base_dir)
    fields = field_names()
    fixed = section_table(raw, "fixed", where)
    factors_raw = section_table(raw, "factors", where)
    for section, table in (("fixed", fixed), ("factors", factors_raw)):
        bad = [k for k in table if k not in fields]
        if bad:
            raise StudyError(f"{where}: [{section}] unknown field(s) {bad}; allowed: {fields}")
    both = [k for k in factors_raw if k in fixed]
    if both:
        raise StudyError(f"{where}: field(s) {both} are both in [fixed] and in [factors]; put each in one place")
    if "seed" in fixed or "seed" in factors_raw:
        raise StudyError(f"{where}: 'seed' is set by the top-level key 'seeds' (a count or a list), "
                         "not in [fixed] or [factors]")
    factors: dict[str, tuple[Any, ...]] = {}
    for key, levels in factors_raw.items():
        if not isinstance(levels, list) or not levels:
            raise StudyError(f"{where}: [factors] {key} must be a non-empty list of levels, got {levels!r}")
        norm = [norm_level(v) for v in levels]
        dup = [v for i, v in enumerate(levels) if norm[i] in norm[:i]]
        if dup:
            raise StudyError(f"{where}: [factors] {key} repeats level(s) {dup}")
        factors[key] = tuple(levels)
    seeds = parse_study_seeds(raw.get("seeds", 1), where)
    n_points = math.prod(len(v) for v in factors.values())
    if n_points * len(seeds) > MAX_RUNS:
        raise StudyError(f"{where}: key 'seeds' = {len(seeds):,} seeds × {n_points:,} factor combinations = "
                         f"{n_points * len(seeds):,} runs; allowed: at most {MAX_RUNS:,} runs per study")
    probe_seeds = raw.get("probe_seeds")
    if probe_seeds is not None and (isinstance(probe_seeds, bool) or not isinstance(probe_seeds, int)
                                    or not 0 <= probe_seeds <= len(seeds)):
        raise StudyError(f"{where}: key 'probe_seeds' = {probe_seeds!r} is invalid; allowed: an integer in "
                         f"[0, {len(seeds)}] (how many of each config's seeds run the gradient-variance probes)")
    exclude = parse_exclude(raw.get("exclude", []), factors, where)
    sample = parse_sample(raw.get("sample"), where)
    report = parse_report(raw.get("report", {}), where)
    try:
        tune = parse_tune(raw.get("tune"), where=where, eval_seeds=seeds, factors=factors, fixed=fixed)
    except ConfigError as exc:
        raise StudyError(str(exc)) from None
    most = max(len(tune.grid(e)) for e in (None, *tune.env)) if tune else 0
    if tune and n_points * most * len(tune.seeds) > MAX_RUNS:
        raise StudyError(f"{where}: [tune] {n_points:,} configs × {most:,} candidates × "
                         f"{len(tune.seeds):,} seeds is more than {MAX_RUNS:,} tuning runs")
    env = parse_env(raw.get("env", {}), fixed, factors, where)
    try:
        sequential = parse_sequential(raw.get("sequential"), where=where, seeds=seeds, report=report,
                                      tuned=tune is not None)
    except ConfigError as exc:
        raise StudyError(str(exc)) from None
    clash = sorted({k for table in env.values() for k in table} & set(tune.candidates if tune else ()))
    if clash:
        raise StudyError(f"{where}: [tune] {clash} also set in an [env.\"…\"] table; allowed: a tuned field is "
                         "chosen per config, so no env table may fix it")
    study = Study(name=name, path=where, description=description, fixed=dict(fixed), factors=factors,
                  seeds=seeds, exclude=exclude, sample=sample, report=report, imports=imports,
                  probe_seeds=probe_seeds, env=env, tune=tune, sequential=sequential,
                  import_paths=(str(Path(base_dir).resolve()),) if base_dir is not None and _custom(imports, fixed,
                                                                                             factors) else ())
    validate_study(study)
    return study


def with_overrides(study: Study, overrides: Mapping[str, Any]) -> Study:
    """The study with `overrides` merged into [fixed], validated again (a swept field cannot be overridden)."""
    where = f"{study.path} (with --set)"
    bad = [k for k in overrides if k not in field_names() or k == "seed"]
    if bad:
        raise StudyError(f"--set: unknown field(s) {bad}; allowed: {[f for f in field_names() if f != 'seed']}")
    swept = [k for k in overrides if k in study.factors]
    if swept:
        raise StudyError(f"--set: {swept} are swept in [factors] of {study.path}; allowed: fields that are not "
                         f"factors ({list(study.factors)} are)")
    env = {e: {k: v for k, v in t.items() if k not in overrides} for e, t in study.env.items()}  # --set wins
    new = dataclasses.replace(study, fixed={**study.fixed, **overrides}, env=env, path=where)
    validate_study(new)
    return dataclasses.replace(new, path=study.path)


def unswept_defaults(study: Study) -> dict[str, Any]:
    """Every `RunConfig` field the study neither fixes (in [fixed] or an [env."…"] table) nor sweeps, seed aside,
    with the default it takes (what README says `--dry-run` lists)."""
    default = RunConfig()
    per_env = {k for table in study.env.values() for k in table}
    return {k: getattr(default, k) for k in field_names()
            if k != "seed" and k not in study.fixed and k not in study.factors and k not in per_env}


def _custom(imports: Sequence[str], fixed: Mapping[str, Any], factors: Mapping[str, Sequence[Any]]) -> bool:
    """Whether the study needs its own folder importable: `imports`, or an env id of the `module:Env-v0` form."""
    ids = [fixed.get("env_id"), *factors.get("env_id", ())]
    return bool(imports) or any(isinstance(i, str) and ":" in i for i in ids)


def validate_study(study: Study) -> None:
    """Build every level and every run, and describe each environment once; raise `StudyError` naming the key."""
    from ..envs.registry import describe

    where = study.path
    envs = env_ids(study)
    for i, anchor in enumerate(study.report.get("anchors", [])):
        if anchor["env_id"] not in envs:
            raise StudyError(f"{where}: [[report.anchors]] #{i + 1}: env_id = {anchor['env_id']!r} is not an env of "
                             f"the study; allowed: {envs}")
    base = dict(study.fixed)
    try:
        RunConfig.from_dict(base, where=where)
    except (ConfigError, TypeError) as exc:
        if not study.factors:
            raise StudyError(f"{where}: [fixed] {exc}") from None
        fixed_error: BaseException | None = exc  # may depend on a factor (e.g. loo needs N >= 2): checked below
    else:
        fixed_error = None
    for key, levels in study.factors.items():
        for level in levels:
            try:
                RunConfig.from_dict({**base, key: level})
            except (ConfigError, TypeError) as exc:
                if (fixed_error is None or str(exc) != str(fixed_error)) and not _valid_somewhere(study, key, level):
                    raise StudyError(f"{where}: [factors] {key}: {exc}") from None
    first = {k: v[0] for k, v in study.factors.items()}
    try:
        RunConfig.from_dict({**base, **first}, where=where)
    except (ConfigError, TypeError) as exc:
        raise StudyError(f"{where}: [fixed] {exc}") from None
    for name, value in study.report.get("reference", {}).items():
        try:
            RunConfig.from_dict({**base, **first, name: value})
        except (ConfigError, TypeError) as exc:
            raise StudyError(f"{where}: [report] reference {name}: {exc}") from None
    for env_id, candidate in ([(e, c) for e in (None, *study.tune.env) for c in study.tune.grid(e)]
                              if study.tune else ()):
        try:
            RunConfig.from_dict({**base, **first, **({"env_id": env_id} if env_id else {}), **candidate})
        except (ConfigError, TypeError) as exc:
            raise StudyError(f"{where}: [tune] {exc}") from None
    configs = expand(study)
    if not configs:
        raise StudyError(f"{where}: the [[exclude]] rules drop every run; nothing to do")
    _check_reference(study, configs)
    if study.sequential is not None:
        found = {c.family for c in contrasts(grid(study), study.factors, study.sequential.families,
                                             study.report.get("reference"))}
        empty = [f for f in study.sequential.families if f not in found]
        if empty:
            raise StudyError(f"{where}: [sequential] families {empty} have no contrast in this study (\"main\" needs a "
                             "factor with 2 or more levels, \"interactions\" two such factors, \"configs\" the "
                             "reference config and another); allowed: families this study's factors define")
    if study.probe_seeds and not any(c.probe_every for c in configs):
        raise StudyError(f"{where}: key 'probe_seeds' = {study.probe_seeds} but probes are off in every run "
                         "(probe_every = 0, the default); allowed: set probe_every > 0 in [fixed] (e.g. "
                         "probe_every = 10: probes every 10 updates) or remove probe_seeds")
    described: dict[tuple[str, str | None], Any] = {}
    for cfg in configs:
        if (cfg.env_id, cfg.preprocess) not in described:
            try:
                spec = describe(cfg.env_id, cfg.preprocess)
                if cfg.env_backend != "auto":
                    from ..envs.registry import resolve_backend
                    resolve_backend(cfg)
            except ConfigError as exc:
                key = ("[factors] env_id" if "env_id" in study.factors
                       else "[fixed] env_id" if "env_id" in study.fixed else "env_id (default)")
                raise StudyError(f"{where}: {key}: {exc}") from None
            described[(cfg.env_id, cfg.preprocess)] = spec
        _check_policy_init(study, cfg, described[(cfg.env_id, cfg.preprocess)])


def _check_policy_init(study: Study, cfg: RunConfig, spec: Any) -> None:
    """A config's initial policy (init_logits / init_log_std) must fit its env's actions: a `StudyError` before
    anything is trained."""
    from ..envs.registry import check_policy_init

    try:
        check_policy_init(cfg, spec)
    except ConfigError as exc:
        raise StudyError(f"{study.path}: {exc}") from None


def _valid_somewhere(study: Study, key: str, level: Any) -> bool:
    """Whether some grid point (after [[exclude]]) with `key = level` builds: a level invalid only next to the other
    factors' defaults (gae_lambda ≠ 1 needs returns = gae) is not a bad level when the study crosses it with the
    factor that makes it valid and excludes the rest (`expand` still refuses any point left invalid)."""
    for point in grid(study):
        if norm_level(point[key]) == norm_level(level):
            try:
                RunConfig.from_dict(point_fields(study, point))
                return True
            except (ConfigError, TypeError):
                continue
    return False


def _check_reference(study: Study, configs: Sequence[RunConfig]) -> None:
    """`[report] reference` must name a config the study trains (after exclusions), or the report would compare
    against another one."""
    reference = study.report.get("reference")
    if not reference:
        return
    if any(all(norm_level(getattr(c, k)) == norm_level(v) for k, v in reference.items()) for c in configs):
        return
    levels = {k: sorted({format_level(getattr(c, k)) for c in configs}) for k in reference}
    offending = [f"{k} = {v!r} (trained: {', '.join(levels[k])})" for k, v in reference.items()
                 if format_level(v) not in levels[k]]
    raise StudyError(f"{study.path}: [report] reference {dict(reference)} is not a config of this study"
                     + (f": {'; '.join(offending)}" if offending else " (the [[exclude]] rules drop it)")
                     + "; allowed: one combination of the levels the study trains, e.g. "
                     + "{" + ", ".join(f"{k} = {getattr(configs[0], k)!r}" for k in reference) + "}")


def format_level(value: Any) -> str:
    """A level as the reports print it: 0 and 0.0 alike, lists as 64-64."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)):
        return repr(float(value))
    if isinstance(value, (list, tuple)):
        return "-".join(map(str, value))
    return str(value)

# ---- expansion -------------------------------------------------------------------------------------------------
def grid(study: Study) -> list[dict[str, Any]]:
    """Factor assignments in file order (last factor fastest), exclusions applied, then the optional sample."""
    names = list(study.factors)
    points = [dict(zip(names, combo)) for combo in itertools.product(*study.factors.values())]
    points = [p for p in points if not any(_matches(p, rule) for rule in study.exclude)]
    if study.sample and study.sample["k"] < len(points):
        rng = np.random.default_rng(study.sample["seed"])
        keep = np.sort(rng.choice(len(points), size=study.sample["k"], replace=False))
        points = [points[i] for i in keep]
    return points


def env_ids(study: Study) -> list[str]:
    """The study's env ids: the levels of env_id, or its one [fixed] (else default) env."""
    return [str(e) for e in study.factors.get("env_id", [study.fixed.get("env_id", RunConfig().env_id)])]


def point_fields(study: Study, point: Mapping[str, Any]) -> dict[str, Any]:
    """The RunConfig fields of one grid point, seed aside: [fixed], then its env's [env."Id"] table, then the point."""
    env_id = str(point.get("env_id", study.fixed.get("env_id", RunConfig().env_id)))
    return {**study.fixed, **study.env.get(env_id, {}), **point}


def seed_fields(study: Study, seed: int) -> dict[str, Any]:
    """The fields a run's seed sets: `seed`, and the probed-seed rule — with `probe_seeds = k`, only each config's
    first k seeds keep the study's `probe_every`; the others train with probes off (probe_every = 0; their training
    rows are the same either way: probes draw from their own stream)."""
    probed = study.seeds if study.probe_seeds is None else study.seeds[: study.probe_seeds]
    return {"seed": seed, **({} if seed in probed else {"probe_every": 0})}


def expand(study: Study) -> list[RunConfig]:
    """Every run of the study: grid points in order, seeds innermost, each seed's fields by `seed_fields`. Pure and
    deterministic."""
    try:
        return [RunConfig.from_dict({**point_fields(study, point), **seed_fields(study, seed)}, where=study.path)
                for point in grid(study) for seed in study.seeds]
    except (ConfigError, TypeError) as exc:
        raise StudyError(f"{study.path}: {exc}") from None


def _matches(point: Mapping[str, Any], rule: Mapping[str, tuple]) -> bool:
    return all(norm_level(point[k]) in values for k, values in rule.items())


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return value
