"""`RunConfig`: every knob of one training run, validated, with a stable `run_id`.

A run is a pure function of its `RunConfig` (DESIGN.md invariant 1): the config, not the process, the cohort or the
executor, determines every number the run writes. The ablation axes are `Literal`s; `AXES` lists their levels, and
every error names the field and the allowed values.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, Mapping

Returns = Literal["full", "rtg", "gpomdp", "rally"]
Baseline = Literal["none", "mean", "loo", "value"]
Normalize = Literal["none", "returns", "advantages"]
Aggregate = Literal["episode", "step"]
Activation = Literal["tanh", "relu"]
EnvBackend = Literal["auto", "native", "gymnasium", "envpool"]
Optimizer = Literal["adam", "rmsprop", "sgd"]

#: The ablation axes and their levels, in the order reports list them. `returns` lists the levels the gradient probes
#: measure; `rally` (pg-pong's returns) is a valid `returns` level too (`RETURNS_OBJECTIVE`), but not probed.
AXES: dict[str, tuple[str, ...]] = {
    "returns": tuple(r for r in typing.get_args(Returns) if r != "rally"),
    "baseline": typing.get_args(Baseline),
    "normalize": typing.get_args(Normalize),
    "aggregate": typing.get_args(Aggregate),
}
#: The vanilla REINFORCE estimator: the reference every comparison starts from.
VANILLA: dict[str, Any] = {"returns": "full", "baseline": "none", "normalize": "none", "entropy_coef": 0.0}
#: What each `returns` level estimates (DESIGN.md "Ablation axes"; J_γ = E[Σ_t γ^t r_t], ψ_t = ∇θ log π(a_t|s_t)).
RETURNS_OBJECTIVE: dict[str, str] = {
    "full": "∇J_γ: Σ_t ψ_t G_0, every step weighted by the episode's discounted return",
    "rtg": "no objective's gradient when γ < 1: Σ_t ψ_t G_t, G_t = Σ_{k≥t} γ^{k−t} r_k (the common form)",
    "gpomdp": "∇J_γ: Σ_t ψ_t γ^t G_t, the reward-to-go weighted by γ^t (GPOMDP; = rtg when γ = 1)",
    "rally": "no ∇J: Σ_t ψ_t Σ_{k=t}^{τ_t} γ^{k−t} r_k, τ_t the first k ≥ t with r_k ≠ 0 (pg-pong's returns: each "
             "point its own episode; drops every reward after the point, and the γ^t)",
}


#: Fields added after the studies in `results/` were published, each with the value at which the engine behaves as it
#: did before the field existed. `canonical_json` leaves a field out at that value, so a new knob does not change the
#: run id (nor the rows) of a config that does not use it; any other value enters the id. Add a new field here only
#: if its neutral value really reproduces the old behaviour bit for bit (tests/test_config.py holds each entry).
ID_NEUTRAL: Mapping[str, Any] = types.MappingProxyType({
    "total_episodes": None, "value_hidden": None, "value_optimizer": "adam", "init_logits": None,
    "init_log_std": None,
})
#: The budget of a config that sets neither `total_steps` nor `total_episodes`.
DEFAULT_TOTAL_STEPS = 100_000


class ConfigError(ValueError):
    """A config value is invalid; the message names the field and what is allowed."""


@dataclass(frozen=True)
class RunConfig:
    """Every knob of one run. Defaults are a sensible REINFORCE for CartPole-v1."""

    env_id: str = "CartPole-v1"
    seed: int = 0
    # --- the ablation axes (DESIGN.md "Ablation axes")
    returns: Returns = "rtg"
    baseline: Baseline = "value"
    normalize: Normalize = "advantages"
    aggregate: Aggregate = "episode"  # (1/N) Σ_i Σ_t (the Monte-Carlo ∇J) | mean over the batch's valid steps
    entropy_coef: float = 0.0
    # --- the algorithm
    gamma: float = 0.99
    policy_lr: float = 3e-3
    value_lr: float = 3e-3
    value_iters: int = 1  # full-batch critic steps on the value MSE per update (studies/value_iters.toml: 1 trains no
    # worse than 5 on CartPole, Acrobot and LunarLander at 0.67-0.70× the time of a CartPole or Acrobot run)
    episodes_per_update: int = 8  # N: complete episodes per run per update
    # the budget: exactly one of the two. total_steps in environment steps (invariant 5; None → DEFAULT_TOTAL_STEPS
    # unless total_episodes is set); total_episodes in episodes, a multiple of N (the textbooks' x-axis)
    total_steps: int | None = None
    total_episodes: int | None = None
    max_grad_norm: float | None = None  # per-run clipping of the policy gradient; None = no clipping
    # the policy's per-run optimizer, torch.optim's update rule (the critic's: `value_optimizer`)
    optimizer: Optimizer = "adam"  # Adam (betas 0.9, 0.999) | RMSprop (not centered) | SGD; lr = policy_lr
    momentum: float = 0.0  # rmsprop and sgd: torch's momentum (no dampening, no Nesterov); adam ignores it
    rmsprop_decay: float = 0.99  # rmsprop: torch's alpha, the decay of the running mean of g² (pg-pong's decay_rate)
    optimizer_eps: float = 1e-8  # adam and rmsprop: added to the root of the second moment (pg-pong: 1e-5)
    # the critic's optimizer (baseline `value`), with torch's defaults for its kind: Adam (betas 0.9, 0.999, eps
    # 1e-8), RMSprop (alpha 0.99, eps 1e-8), SGD; no momentum; lr = value_lr
    value_optimizer: Optimizer = "adam"
    # --- the networks
    hidden: tuple[int, ...] = (64, 64)  # the policy's hidden layers; () = a linear policy on the observation
    activation: Activation = "tanh"
    value_hidden: tuple[int, ...] | None = None  # the critic's hidden layers; None = `hidden`, () = linear
    # the initial policy: the output layer's bias, its weights zero (so every observation starts at this policy).
    # init_logits: Categorical, one logit per action; Bernoulli, one per binary choice. init_log_std: Gaussian, one
    # log-std per action dimension (the mean starts at 0). None: the usual near-uniform draw (out_gain 0.01)
    init_logits: tuple[float, ...] | None = None
    init_log_std: tuple[float, ...] | None = None
    # --- environments
    # auto: native where it exists, else gymnasium; envpool (the `envpool` extra) only when asked for
    env_backend: EnvBackend = "auto"
    preprocess: str | None = None  # a named observation preprocessor (see ablations.envs.preprocess.PREPROCESSORS)
    # --- evaluation at the end of training: K episodes from a separate stream
    eval_episodes: int = 10
    # which mode `eval_return` reports: False samples from the policy (the return REINFORCE maximizes), True takes the
    # argmax / mean action. Both are measured: eval_return_stochastic and eval_return_greedy
    eval_greedy: bool = False
    # --- gradient-variance probes (ablations.probes); 0 turns them off
    probe_every: int = 0  # updates between probe checkpoints (and update 0); 0 = no probes
    probe_batches: int = 16  # K disjoint batches of N episodes per checkpoint

    def __post_init__(self) -> None:
        for name in ("hidden", "value_hidden", "init_logits", "init_log_std"):
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        for name in ("init_logits", "init_log_std"):
            value = getattr(self, name)
            if isinstance(value, tuple):  # ints become floats (equal configs, equal ids)
                object.__setattr__(self, name, tuple(float(v) if isinstance(v, int) and not isinstance(v, bool)
                                                     else v for v in value))
        if self.total_steps is None and self.total_episodes is None:
            object.__setattr__(self, "total_steps", DEFAULT_TOTAL_STEPS)
        for name in ("entropy_coef", "gamma", "policy_lr", "value_lr", "momentum", "rmsprop_decay", "optimizer_eps"):
            if isinstance(getattr(self, name), int) and not isinstance(getattr(self, name), bool):
                object.__setattr__(self, name, float(getattr(self, name)))
        if isinstance(self.max_grad_norm, int) and not isinstance(self.max_grad_norm, bool):
            object.__setattr__(self, "max_grad_norm", float(self.max_grad_norm))
        validate(self)

    # -- identity -----------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for name in ("hidden", "value_hidden", "init_logits", "init_log_std"):
            if d[name] is not None:
                d[name] = list(d[name])
        return d

    @property
    def budget(self) -> tuple[int, str]:
        """(value, unit) of the run's budget: (total_steps, "env_steps") or (total_episodes, "episodes")."""
        if self.total_episodes is not None:
            return self.total_episodes, "episodes"
        assert self.total_steps is not None  # __post_init__ sets one of the two
        return self.total_steps, "env_steps"

    @property
    def planned_steps(self) -> int:
        """The env steps planned for progress displays: `total_steps`, or with an episode budget `total_episodes`
        (a lower bound: an episode is at least one step; how many steps it takes is known only once trained)."""
        return self.budget[0]

    @property
    def critic_hidden(self) -> tuple[int, ...]:
        """The critic's hidden layers: `value_hidden`, else `hidden`."""
        return self.hidden if self.value_hidden is None else self.value_hidden

    def cells(self) -> dict[str, Any]:
        """Every field and its value, in declaration order: the config columns of runs.csv
        (`study.results_format.format_cell` renders a tuple as "64-64" and None as an empty cell)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def canonical_json(self) -> str:
        """Sorted compact JSON of every field, except an `ID_NEUTRAL` field at its neutral value."""
        d = {k: v for k, v in self.to_dict().items() if k not in ID_NEUTRAL or v != ID_NEUTRAL[k]}
        return json.dumps(d, sort_keys=True, separators=(",", ":"))

    @functools.cached_property
    def run_id(self) -> str:
        """12 hex digits of the SHA-256 of the canonical JSON: stable across processes and hash seeds."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:12]

    def cohort_key(self) -> tuple[Any, ...]:
        """Runs with equal keys can train in one cohort: same env, network shapes and batch layout."""
        return (self.env_id, self.env_backend, self.preprocess, self.hidden, self.critic_hidden, self.activation,
                self.episodes_per_update, self.value_iters, self.probe_batches,
                self.eval_episodes, self.eval_greedy)

    def replace(self, **changes: Any) -> "RunConfig":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "config") -> "RunConfig":
        """Build from a mapping, refusing unknown keys with the list of known ones."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown field(s) {unknown}; known fields: {sorted(known)}")
        return cls(**dict(data))


@functools.cache  # a pure function of the class; evaluating the hints per config took 1 ms (20k runs: 20 s to plan)
def _field_types() -> Mapping[str, Any]:
    return types.MappingProxyType(typing.get_type_hints(RunConfig))  # read-only: the cache cannot be altered


def field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(RunConfig)]


def _err(name: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"{name}={value!r} is invalid; allowed: {allowed}")


def validate(cfg: RunConfig) -> None:
    """Check types, ranges and `Literal` levels; raise `ConfigError` naming the field and the allowed values."""
    hints = _field_types()
    for f in dataclasses.fields(cfg):
        value, hint = getattr(cfg, f.name), hints[f.name]
        choices = typing.get_args(hint) if typing.get_origin(hint) is Literal else None
        if choices is not None:
            if value not in choices:
                raise _err(f.name, value, " | ".join(map(str, choices)))
    _check_type("env_id", cfg.env_id, str)
    if not cfg.env_id:
        raise _err("env_id", cfg.env_id, "a registered gymnasium id such as CartPole-v1")
    _check_int("seed", cfg.seed, 0, 2**63 - 1)
    _check_float("entropy_coef", cfg.entropy_coef, 0.0, math.inf, "a number >= 0")
    _check_float("gamma", cfg.gamma, 0.0, 1.0, "a number in [0, 1]")
    _check_float("policy_lr", cfg.policy_lr, 0.0, math.inf, "a number > 0", open_low=True)
    _check_float("value_lr", cfg.value_lr, 0.0, math.inf, "a number > 0", open_low=True)
    _check_int("value_iters", cfg.value_iters, 1, 10_000)
    _check_int("episodes_per_update", cfg.episodes_per_update, 1, 1_000_000)
    if cfg.baseline in ("loo", "mean") and cfg.episodes_per_update < 2:  # mean of one episode: itself, a zero signal
        raise _err("episodes_per_update", cfg.episodes_per_update,
                   f"an integer >= 2 with baseline={cfg.baseline!r}")
    if cfg.total_steps is not None and cfg.total_episodes is not None:
        raise ConfigError(f"total_steps={cfg.total_steps!r} and total_episodes={cfg.total_episodes!r} are both set; "
                          "allowed: exactly one of them (the budget in env steps or in episodes; with "
                          "RunConfig.replace, set the other to None)")
    if cfg.total_steps is not None:
        _check_int("total_steps", cfg.total_steps, 1, 10**12)
    else:
        _check_int("total_episodes", cfg.total_episodes, 1, 10**12)
        if cfg.total_episodes % cfg.episodes_per_update:
            raise _err("total_episodes", cfg.total_episodes,
                       f"a multiple of episodes_per_update={cfg.episodes_per_update} (N episodes per update; the "
                       "run's episodes then equal the budget)")
    _check_float("momentum", cfg.momentum, 0.0, 1.0, "a number in [0, 1]")
    _check_float("rmsprop_decay", cfg.rmsprop_decay, 0.0, 1.0, "a number in [0, 1]")
    _check_float("optimizer_eps", cfg.optimizer_eps, 0.0, 1.0, "a number in [0, 1]")
    if cfg.max_grad_norm is not None:
        _check_float("max_grad_norm", cfg.max_grad_norm, 0.0, math.inf, "a number > 0 or None", open_low=True)
    _check_layers("hidden", cfg.hidden)
    if cfg.value_hidden is not None:
        _check_layers("value_hidden", cfg.value_hidden)
    for name in ("init_logits", "init_log_std"):
        value = getattr(cfg, name)
        if value is not None and (not isinstance(value, tuple) or not value or not all(
                isinstance(v, float) and math.isfinite(v) for v in value)):
            raise _err(name, value, "None or a non-empty list of finite numbers (its length: the env's actions, "
                                    "checked against the env)")
    if cfg.init_logits is not None and cfg.init_log_std is not None:
        raise _err("init_log_std", cfg.init_log_std, "None when init_logits is set (init_logits: Categorical or "
                                                     "Bernoulli policies; init_log_std: Gaussian ones)")
    if cfg.preprocess is not None:
        _check_type("preprocess", cfg.preprocess, str)
    _check_int("eval_episodes", cfg.eval_episodes, 0, 1_000_000)
    _check_type("eval_greedy", cfg.eval_greedy, bool)
    _check_int("probe_every", cfg.probe_every, 0, 10**9)
    if cfg.probe_every > 0 and cfg.returns not in AXES["returns"]:
        raise _err("probe_every", cfg.probe_every,
                   f"0 with returns={cfg.returns!r} (the probes measure returns {' | '.join(AXES['returns'])})")
    _check_int("probe_batches", cfg.probe_batches, 2, 1_000_000)


def _check_layers(name: str, value: Any) -> None:
    if not isinstance(value, tuple) or not all(isinstance(h, int) and not isinstance(h, bool) and h > 0
                                               for h in value):
        raise _err(name, value, "a list of positive integers, e.g. [64, 64]; [] = linear (no hidden layer)")


def _check_type(name: str, value: Any, typ: type) -> None:
    if not isinstance(value, typ):
        raise _err(name, value, f"a {typ.__name__}")


def _check_int(name: str, value: Any, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _err(name, value, f"an integer in [{lo}, {hi}]")


def _check_float(name: str, value: Any, lo: float, hi: float, allowed: str, open_low: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _err(name, value, allowed)
    if value < lo or value > hi or (open_low and value == lo):
        raise _err(name, value, allowed)


#: Columns of `runs.csv` that come from the config (the factor columns keep these names everywhere).
CONFIG_COLUMNS: list[str] = field_names()
