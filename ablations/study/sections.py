"""The sections of a study file, one validator each, and the one seed parser.

Each `_parse_<section>` takes the parsed TOML value of one key or table and returns it validated, or raises a
`StudyError` naming the file, the key and what is allowed; `design.parse_study` calls them in turn and then checks
the study as a whole. `parse_seeds` is the one reading of a seed list, shared by the study file's `seeds`, `[tune]
seeds` (`tune_spec`) and the command line's `--seeds` text (`parse_seed_text`); each caller words its own error.
`find_study` finds a study file by path or by name, `parse_overrides` reads `--set FIELD=VALUE` items.
"""

from __future__ import annotations

import math

import tomllib
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..config import ConfigError, RunConfig, field_names
from .margin import parse_margin

#: Keys of the `[sample]` table.
SAMPLE_KEYS = ("k", "seed")
#: Keys of the `[report]` table.
REPORT_KEYS = ("reference", "threshold", "seed", "primary", "references", "random_episodes", "margin", "anchors")
#: An external anchor ([[report.anchors]]): a published number of a well-known implementation on one env, which the
#: report sets beside the study's best config. Required keys → what they hold; `spread` (a number ≥ 0, the source's ±)
#: and `points` (the source's curve: [[env steps, value], …]) are optional.
ANCHOR_KEYS = {"env_id": "the env the number is for (a level of env_id)", "source": "who published it, and where",
               "value": "the published number", "steps": "its budget in env steps (an integer > 0)",
               "measures": "what the number is (which returns, how many seeds or episodes, what ± means)",
               "differs": "how the source's algorithm differs from this study's"}
ANCHOR_OPTIONAL = ("spread", "points")
#: The per-run scores the report computes; `[report] primary` names one (the report's key findings read it).
PRIMARY_METRICS = ("final_return", "auc", "eval_return", "steps_to_threshold")


class StudyError(ConfigError):
    """A study file is invalid; the message names the file, the key and what is allowed."""


# ---- seeds -----------------------------------------------------------------------------------------------------
class SeedsError(ValueError):
    """`parse_seeds` refused a value; `reason`: "invalid" (not a count or a list of integers >= 0) or "repeat"."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def parse_seeds(value: Any, *, offset: int = 0) -> tuple[int, ...]:
    """A count n → seeds offset, …, offset + n − 1; a non-empty list of distinct integers >= 0 → those seeds, in
    order. Anything else raises `SeedsError`."""
    if _is_int(value) and value >= 1:
        return tuple(range(offset, offset + value))
    if isinstance(value, list) and value and all(_is_int(s) and s >= 0 for s in value):
        if len(set(value)) != len(value):
            raise SeedsError("repeat")
        return tuple(value)
    raise SeedsError("invalid")


def parse_seed_text(text: str) -> tuple[int, ...]:
    """Command-line seeds: '0-7' → 0..7 (inclusive), '0,3,5' → (0, 3, 5), '4' → (4,) (one seed, not a count);
    `SeedsError` ("syntax" when the text is not ranges and integers, else as `parse_seeds`)."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-", 1))
                if hi < lo:
                    raise ValueError
                seeds.extend(range(lo, hi + 1))
            else:
                seeds.append(int(part))
    except ValueError:
        raise SeedsError("syntax") from None
    return parse_seeds(seeds)


# ---- sections --------------------------------------------------------------------------------------------------
def section_table(raw: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise StudyError(f"{where}: key '{key}' must be a table ([{key}]), got {value!r}")
    return value


def parse_imports(value: Any, where: str, base_dir: str | Path | None = None) -> tuple[str, ...]:
    from ..envs.registry import import_modules

    if not isinstance(value, list) or not all(isinstance(m, str) and m for m in value):
        raise StudyError(f"{where}: key 'imports' must be a list of module names such as [\"my_env\"], "
                         f"got {value!r}")
    try:
        import_modules(value, () if base_dir is None else (base_dir,))
    except ConfigError as exc:
        raise StudyError(f"{where}: key 'imports': {exc}") from None
    return tuple(value)


def parse_study_seeds(value: Any, where: str) -> tuple[int, ...]:
    """The top-level `seeds`: a count n (seeds 0..n-1) or a list of distinct integers >= 0."""
    try:
        return parse_seeds(value)
    except SeedsError as exc:
        if exc.reason == "repeat":
            raise StudyError(f"{where}: key 'seeds' repeats a seed: {value}") from None
        raise StudyError(f"{where}: key 'seeds' = {value!r} is invalid; allowed: a count n >= 1 (seeds 0..n-1) or a "
                         "non-empty list of distinct integers >= 0") from None


def parse_exclude(value: Any, factors: Mapping[str, tuple[Any, ...]], where: str) -> tuple[dict[str, tuple], ...]:
    if not isinstance(value, list):
        raise StudyError(f"{where}: key 'exclude' must be an array of tables ([[exclude]])")
    rules = []
    for i, rule in enumerate(value):
        at = f"{where}: [[exclude]] #{i + 1}"
        if not isinstance(rule, dict) or not rule:
            raise StudyError(f"{at} must be a non-empty table of factor = level or factor = [levels]")
        parsed: dict[str, tuple] = {}
        for key, v in rule.items():
            if key not in factors:
                raise StudyError(f"{at}: key {key!r} is not a factor; allowed: {list(factors)}")
            levels = [norm_level(x) for x in factors[key]]
            if norm_level(v) in levels:
                values = (v,)
            elif isinstance(v, list) and v and all(norm_level(x) in levels for x in v):
                values = tuple(v)
            else:
                raise StudyError(f"{at}: {key} = {v!r} does not name levels of the factor; allowed: "
                                 f"{list(factors[key])} (one level or a list of them)")
            parsed[key] = tuple(norm_level(x) for x in values)
        rules.append(parsed)
    return tuple(rules)


def parse_sample(value: Any, where: str) -> dict[str, int] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - set(SAMPLE_KEYS) or "k" not in value:
        raise StudyError(f"{where}: [sample] must be a table with keys {list(SAMPLE_KEYS)} ('k' required), "
                         f"got {value!r}")
    k, seed = value["k"], value.get("seed", 0)
    for key, v, lo in (("k", k, 1), ("seed", seed, 0)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise StudyError(f"{where}: [sample] {key} = {v!r} is invalid; allowed: an integer >= {lo}")
    return {"k": k, "seed": seed}


def parse_env(value: Any, fixed: Mapping[str, Any], factors: Mapping[str, tuple[Any, ...]],
               where: str) -> dict[str, dict[str, Any]]:
    """`[env."Id"]` tables: fixed fields for the runs of one env_id level (budget, N, network, learning rates)."""
    if not isinstance(value, dict) or not all(isinstance(t, dict) for t in value.values()):
        raise StudyError(f"{where}: key 'env' must hold tables [env.\"<env_id>\"] of field = value")
    envs = [str(e) for e in factors.get("env_id", (fixed.get("env_id", RunConfig().env_id),))]
    fields = field_names()
    for env_id, table in value.items():
        if env_id not in envs:
            raise StudyError(f"{where}: [env.\"{env_id}\"] is not an env of this study; allowed: {envs}")
        bad = [k for k in table if k not in fields or k in ("env_id", "seed")]
        if bad:
            raise StudyError(f"{where}: [env.\"{env_id}\"] unknown or disallowed field(s) {bad}; allowed: "
                             f"{[f for f in fields if f not in ('env_id', 'seed')]}")
        swept = [k for k in table if k in factors]
        if swept:
            raise StudyError(f"{where}: [env.\"{env_id}\"] field(s) {swept} are swept in [factors]; a per-env "
                             "field must be a fixed one")
    return {str(e): dict(t) for e, t in value.items()}


def parse_report(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise StudyError(f"{where}: key 'report' must be a table ([report])")
    bad = [k for k in value if k not in REPORT_KEYS]
    if bad:
        raise StudyError(f"{where}: [report] unknown key(s) {bad}; allowed: {list(REPORT_KEYS)}")
    ref = value.get("reference", {})
    if not isinstance(ref, dict):
        raise StudyError(f"{where}: [report] reference must be a table of field = value")
    unknown = [k for k in ref if k not in field_names()]
    if unknown:
        raise StudyError(f"{where}: [report] reference has unknown field(s) {unknown}; allowed: {field_names()}")
    if "threshold" in value and (isinstance(value["threshold"], bool)
                                 or not isinstance(value["threshold"], (int, float))):
        raise StudyError(f"{where}: [report] threshold must be a number")
    if "seed" in value and (isinstance(value["seed"], bool) or not isinstance(value["seed"], int)):
        raise StudyError(f"{where}: [report] seed must be an integer")
    refs = value.get("references", {})
    if not isinstance(refs, dict) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                             for v in refs.values()):
        raise StudyError(f"{where}: [report] references must be a table of env_id = number (the score that "
                         "normalizes to 1)")
    if "primary" in value and value["primary"] not in PRIMARY_METRICS:
        raise StudyError(f"{where}: [report] primary = {value['primary']!r} is not a score the report computes; "
                         f"allowed: {' | '.join(PRIMARY_METRICS)}")
    episodes = value.get("random_episodes", 1)
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise StudyError(f"{where}: [report] random_episodes must be an integer >= 1")
    try:
        parse_margin(value.get("margin"))
    except ValueError as exc:
        raise StudyError(f"{where}: {exc}") from None
    _check_anchors(value.get("anchors", []), where)
    return dict(value)


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _check_anchors(anchors: Any, where: str) -> None:
    """`[[report.anchors]]`: a list of tables, each with the keys of ANCHOR_KEYS (+ ANCHOR_OPTIONAL)."""
    if not isinstance(anchors, list) or not all(isinstance(a, dict) for a in anchors):
        raise StudyError(f"{where}: [report] anchors must be an array of tables ([[report.anchors]]), each with "
                         f"{list(ANCHOR_KEYS)}")
    for i, a in enumerate(anchors):
        at = f"{where}: [[report.anchors]] #{i + 1}"
        missing = [k for k in ANCHOR_KEYS if k not in a]
        unknown = [k for k in a if k not in ANCHOR_KEYS and k not in ANCHOR_OPTIONAL]
        if missing or unknown:
            raise StudyError(f"{at}: {'missing ' + str(missing) if missing else 'unknown key(s) ' + str(unknown)}; "
                             f"allowed: {list(ANCHOR_KEYS)} (required) and {list(ANCHOR_OPTIONAL)}")
        for k in ("env_id", "source", "measures", "differs"):
            if not isinstance(a[k], str) or not a[k].strip():
                raise StudyError(f"{at}: {k} must be a non-empty string ({ANCHOR_KEYS[k]})")
        if not _number(a["value"]):
            raise StudyError(f"{at}: value = {a['value']!r} must be a finite number ({ANCHOR_KEYS['value']})")
        if isinstance(a["steps"], bool) or not isinstance(a["steps"], int) or a["steps"] <= 0:
            raise StudyError(f"{at}: steps = {a['steps']!r} must be an integer > 0 ({ANCHOR_KEYS['steps']})")
        if "spread" in a and (not _number(a["spread"]) or a["spread"] < 0):
            raise StudyError(f"{at}: spread = {a['spread']!r} must be a number >= 0 (the source's ±)")
        points = a.get("points", [])
        if not isinstance(points, list) or not all(
                isinstance(pt, list) and len(pt) == 2 and isinstance(pt[0], int) and not isinstance(pt[0], bool)
                and pt[0] > 0 and _number(pt[1]) for pt in points):
            raise StudyError(f"{at}: points must be a list of [env steps (integer > 0), value] pairs")


def norm_level(value: Any) -> Any:
    """Comparable form of a level: lists → tuples, ints that stand for floats stay equal (0 == 0.0)."""
    if isinstance(value, list):
        return tuple(norm_level(v) for v in value)
    return value


# ---- the command line -------------------------------------------------------------------------------------------
def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """["total_steps=2000", "hidden=[8]"] → {"total_steps": 2000, "hidden": [8]} (values are TOML; a bare word is a
    string); raise `StudyError` naming the item."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise StudyError(f"--set {item!r} is invalid; allowed: FIELD=VALUE, e.g. --set total_steps=2000")
        try:
            out[key] = tomllib.loads(f"v = {text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            out[key] = text.strip()
    return out


def find_study(name_or_path: str, studies_dir: str | Path = "studies") -> Path:
    """A path to an existing file, or the study in `studies_dir` whose `name` (or file stem) is `name_or_path`."""
    path = Path(name_or_path)
    if path.is_file() or path.suffix == ".toml" or "/" in name_or_path:
        return path
    matches = []
    for candidate in sorted(Path(studies_dir).glob("*.toml")):
        try:
            declared = tomllib.loads(candidate.read_text(encoding="utf-8")).get("name")
        except (OSError, tomllib.TOMLDecodeError):
            declared = None
        if declared == name_or_path or (declared is None and candidate.stem == name_or_path):
            matches.append(candidate)
    if len(matches) > 1:
        raise StudyError(f"study name {name_or_path!r} is declared by several files: {[str(m) for m in matches]}; "
                         "give the file path, or rename one")
    if not matches:
        raise StudyError(f"{name_or_path}: no such study file, and no study named {name_or_path!r} in "
                         f"{studies_dir}/")
    return matches[0]
