"""Env-steps/s of a seed-style REINFORCE loop vs the cohort engine, measured interleaved in one process.

The seed-style loop is what tutorials do: one gymnasium env, a batch-1 forward *with autograd* at every step,
log-probabilities kept in a list, one backward per episode and one Adam step every N episodes. The engine runs the
same algorithm (same N, network, estimator, optimizer) for a cohort of R runs in lockstep. Rounds alternate between
the methods so both see the same machine state; each method's rate is its env steps over its own time.

    python benchmarks/throughput.py                  # CartPole-v1, N=8, 4-64-64-2 tanh, R=64
    python benchmarks/throughput.py --hidden 128-128 --cohort-sizes 1,8,32,128 --seconds 20
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import torch
from torch import nn

from ablations.config import RunConfig
from ablations.train.engine import Trainer
from ablations.study.executors import configure_worker


class SeedStyle:
    """The tutorial loop: one env, per-step autograd, REINFORCE with reward-to-go and a normalized advantage."""

    def __init__(self, cfg: RunConfig):
        self.cfg = cfg
        self.env = gym.make(cfg.env_id)
        obs_dim = self.env.observation_space.shape[0]
        layers: list[nn.Module] = []
        sizes = [obs_dim, *cfg.hidden]
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.Tanh()]
        layers.append(nn.Linear(sizes[-1], int(self.env.action_space.n)))
        self.policy = nn.Sequential(*layers)
        self.opt = torch.optim.Adam(self.policy.parameters(), lr=cfg.policy_lr)
        self.seed = cfg.seed

    def update(self) -> int:
        """N episodes, one backward each, one optimizer step; returns env steps."""
        steps = 0
        self.opt.zero_grad()
        for _ in range(self.cfg.episodes_per_update):
            obs, _ = self.env.reset(seed=self.seed)
            self.seed += 1
            logps, rewards, done = [], [], False
            while not done:
                logits = self.policy(torch.as_tensor(obs, dtype=torch.float32))
                dist = torch.distributions.Categorical(logits=logits)
                a = dist.sample()
                logps.append(dist.log_prob(a))
                obs, r, term, trunc, _ = self.env.step(int(a))
                rewards.append(float(r))
                done = term or trunc
            g, rtg = 0.0, []
            for r in reversed(rewards):
                g = r + self.cfg.gamma * g
                rtg.append(g)
            ret = torch.tensor(rtg[::-1])
            adv = (ret - ret.mean()) / (ret.std() + 1e-8) if len(ret) > 1 else ret * 0
            loss = -(torch.stack(logps) * adv).sum() / self.cfg.episodes_per_update
            loss.backward()
            steps += len(rewards)
        self.opt.step()
        return steps


class Engine:
    """A cohort of R runs trained by the package's engine (`Trainer.iterate`, as `train_cohort` runs it): one call
    advances it by one group of updates."""

    def __init__(self, cfg: RunConfig, r: int):
        self.configs = [cfg.replace(seed=s) for s in range(r)]
        self._fresh()

    def _fresh(self) -> None:
        self.trainer = Trainer(self.configs)
        self.groups = self.trainer.iterate()

    def update(self) -> int:
        for steps in self.groups:
            return steps
        self._fresh()  # budget exhausted: start a fresh cohort
        return self.update()


def measure(methods: dict[str, object], seconds: float) -> dict[str, tuple[int, float]]:
    """Alternate one update of each method until each has run `seconds`; → name: (steps, time)."""
    totals = {name: [0, 0.0] for name in methods}
    while min(t for _, t in totals.values()) < seconds:
        for name, m in methods.items():
            if totals[name][1] >= seconds:
                continue
            t0 = time.perf_counter()
            totals[name][0] += m.update()  # type: ignore[attr-defined]
            totals[name][1] += time.perf_counter() - t0
    return {k: (int(v[0]), float(v[1])) for k, v in totals.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env", default="CartPole-v1")
    ap.add_argument("--episodes", type=int, default=8, help="N, episodes per update")
    ap.add_argument("--hidden", default="64-64")
    ap.add_argument("--cohort-size", type=int, default=64, help="R for the headline ratio")
    ap.add_argument("--cohort-sizes", default="", help="also measure the native engine at these R (e.g. 1,8,32,128)")
    ap.add_argument("--seconds", type=float, default=15.0, help="measured time per method")
    ap.add_argument("--backends", default="gymnasium,native")
    args = ap.parse_args()
    configure_worker()  # as every training process: one torch thread, glibc malloc keeps freed memory
    cfg = RunConfig(env_id=args.env, episodes_per_update=args.episodes,
                    hidden=tuple(int(h) for h in args.hidden.split("-")),
                    baseline="none", returns="rtg", normalize="advantages", total_steps=10**9, eval_episodes=0)
    methods: dict[str, object] = {"seed-style": SeedStyle(cfg)}
    for b in args.backends.split(","):
        methods[f"engine[{b}, R={args.cohort_size}]"] = Engine(cfg.replace(env_backend=b), args.cohort_size)
    res = measure(methods, args.seconds)
    base = res["seed-style"][0] / res["seed-style"][1]
    print(f"{args.env}, N={args.episodes}, hidden {args.hidden}, torch threads 1, {args.seconds:.0f}s per method")
    for name, (steps, secs) in res.items():
        rate = steps / secs
        print(f"  {name:<32} {steps:>10,} steps in {secs:6.1f}s = {rate:>11,.0f} env-steps/s  "
              f"ratio {rate / base:7.1f}x")
    if args.cohort_sizes:
        print("native engine throughput vs cohort size R:")
        for r in (int(x) for x in args.cohort_sizes.split(",")):
            steps, secs = measure({"e": Engine(cfg.replace(env_backend="native"), r)}, args.seconds)["e"]
            print(f"  R={r:<5} {steps / secs:>11,.0f} env-steps/s  ratio {steps / secs / base:7.1f}x")


if __name__ == "__main__":
    main()
