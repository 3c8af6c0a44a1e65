"""Native batched implementations of gymnasium's classic-control environments (and of the package's short corridor,
`ablations.envs.short_corridor`): R runs × N episodes stepped at once.

Each class implements the `CohortEnv` protocol of `ablations.envs.spec` and reproduces the gymnasium backend
(`GymnasiumCohortEnv`) bit for bit: the same initial states for the same seeds, the same float64 physics in the same
order of operations, the same float32 observations, rewards and flags.

How bit-exactness is kept:
* The state lives in a float64 torch tensor `[R, N, state_dim]`; the physics runs in numpy on a zero-copy view of it.
  numpy's elementwise `cos`/`sin` are glibc's, exactly what gymnasium's scalar code calls, whereas torch's vectorized
  (SLEEF) `cos`/`sin` differ from glibc by one ulp in ~0.1% of inputs, which chaotic dynamics (Acrobot) amplify.
* Where gymnasium squares a numpy *scalar* (`x**2`: libm's `pow(x, 2)`, or `powf` for float32, which differ from
  `x*x` in the last bit for ~0.1% of inputs), `_libm_square` calls that same libm function element by element:
  `np.float_power` for float64 (its loop calls libm's `pow` on every CPU: numpy dispatches no SIMD kernel for it),
  numpy's scalar power per element for float32. `np.power` is avoided: on AVX-512 CPUs numpy dispatches it to SIMD
  kernels (SVML) that differ from libm for ~3% of inputs, so its bits would depend on the CPU
  (`benchmarks/simd_paths.py` measures both).
  `np.square` where gymnasium does.
* float32 arithmetic that gymnasium does under NumPy 2 promotion rules (Pendulum's torque terms) is done in float32.
* Initial states are drawn with the very generators gymnasium builds: `Generator(PCG64(SeedSequence(seed)))`, one per
  run for ids with a vector entry point (CartPole, `reset(seed=s)` of `CartPoleVectorEnv`), one per episode seeded
  `s + i` otherwise (`SyncVectorEnv`); with many episodes per call the latter are replayed for all episodes at once
  by `envs.pcg64.pcg64_doubles` (SeedSequence's hash and PCG64 in uint64 array arithmetic),
  ~0.3 µs instead of ~15 µs each.
* Ufuncs run on contiguous components, so that numpy picks the same inner loop as for gymnasium's scalars.

Episodes end by termination or by truncation at `spec.max_episode_steps` (`truncated = steps >= max`, both flags may
be set together, as with gymnasium's `TimeLimit`). There is no autoreset: an episode that has ended is frozen (state,
step counter and flags stay as they were; reward 0) until its run is reset. `step` never draws random numbers.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import torch

from . import short_corridor
from .pcg64 import episode_doubles, generator
from .spec import EnvSpec

_PI = math.pi


def _components(states: np.ndarray) -> np.ndarray:
    """[..., S] → [S, ...], each component contiguous: faster ufuncs, and the same numpy inner loop as gymnasium's
    scalars take on any CPU (numpy may dispatch contiguous float64 cos/sin to SIMD code, strided ones to libm)."""
    return states.transpose(states.ndim - 1, *range(states.ndim - 1)).copy()


def _libm_square(x: np.ndarray) -> np.ndarray:
    """`x**2` as gymnasium computes it on numpy scalars, on every CPU: libm's `pow(x, 2)` for float64 (what numpy's
    scalar power calls, and `np.float_power`'s loop), numpy's scalar float32 power (`powf`) for float32."""
    if x.dtype == np.float32:  # float_power would compute in float64: powf is not float32(pow)
        return np.array([v ** 2 for v in x.ravel()], dtype=np.float32).reshape(x.shape)
    return np.float_power(x, 2.0)


class _ClassicControl:
    """Book-keeping shared by every env: state storage, run subsets, step counters, freezing ended episodes."""

    spec: ClassVar[EnvSpec]
    state_dim: ClassVar[int]

    def __init__(self, num_runs: int, num_envs: int):
        if num_runs < 1 or num_envs < 1:
            raise ValueError(f"num_runs and num_envs must be >= 1 (got {num_runs}, {num_envs})")
        self.num_runs, self.num_envs = int(num_runs), int(num_envs)
        shape = (self.num_runs, self.num_envs)
        self.state = torch.zeros(*shape, self.state_dim, dtype=torch.float64)  # [R, N, S]
        self.steps = torch.zeros(shape, dtype=torch.int64)  # steps taken in the current episode
        self.terminated = torch.zeros(shape, dtype=torch.bool)
        self.truncated = torch.zeros(shape, dtype=torch.bool)
        self._live = torch.zeros(shape, dtype=torch.bool)  # reset and not yet ended
        # numpy views sharing memory with the tensors above
        self._s, self._n = self.state.numpy(), self.steps.numpy()
        self._te, self._tr, self._lv = self.terminated.numpy(), self.truncated.numpy(), self._live.numpy()
        self._all = np.arange(self.num_runs)
        self._max_steps = self.spec.max_episode_steps

    # ---- per-env hooks ----------------------------------------------------------------------------------------
    def _initial_states(self, seeds: np.ndarray) -> np.ndarray:
        """Seeds [k] → initial states [k, N, S] (float64 holding gymnasium's exact values)."""
        raise NotImplementedError

    def _initial_obs(self, states: np.ndarray) -> np.ndarray:
        """Initial states [k, N, S] → float32 obs [k, N, D] (as gymnasium's reset returns them)."""
        return self._obs(states)

    def _obs(self, states: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _dynamics(self, s: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(state [k,N,S] float64, actions) → (next state, a new array [k,N,S]; reward f64 [k,N]; terminated)."""
        raise NotImplementedError

    # ---- the CohortEnv protocol -------------------------------------------------------------------------------
    def _is_all(self, runs: np.ndarray) -> bool:
        return len(runs) == self.num_runs and bool((runs == self._all).all())

    def reset(self, runs: np.ndarray, seeds: np.ndarray) -> torch.Tensor:
        runs = np.asarray(runs, dtype=np.int64)
        seeds = np.asarray(seeds)
        if runs.shape != seeds.shape or runs.ndim != 1:
            raise ValueError(f"runs and seeds must be 1-d arrays of the same length (got {runs.shape}, {seeds.shape})")
        states = self._initial_states(seeds)
        self._s[runs] = states
        self._n[runs] = 0
        self._te[runs] = False
        self._tr[runs] = False
        self._lv[runs] = True
        return torch.from_numpy(self._initial_obs(states))

    def step(self, runs: np.ndarray, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                                       torch.Tensor]:
        runs = np.asarray(runs)
        a = actions.detach().numpy()
        if a.shape[:2] != (len(runs), self.num_envs):
            raise ValueError(f"actions must be [k={len(runs)}, N={self.num_envs}, ...] (got {tuple(a.shape)})")
        every = self._is_all(runs)  # the common case: no gather / scatter
        s = self._s if every else self._s[runs]
        live = self._lv if every else self._lv[runs]
        steps = self._n if every else self._n[runs]
        new, reward, term = self._dynamics(s, a)
        if not live.all():  # ended (or never reset) episodes stay frozen; their outputs are ignored by the caller
            np.copyto(new, s, where=~live[..., None])
            reward = np.where(live, reward, 0.0)
            term = np.where(live, term, self._te if every else self._te[runs])
        steps = steps + live  # frozen episodes keep their count, so `trunc` below is their stored flag
        trunc = steps >= self._max_steps
        live = live & ~(term | trunc)
        if every:
            self._s[...], self._n[...] = new, steps
            self._te[...], self._tr[...], self._lv[...] = term, trunc, live
        else:
            self._s[runs], self._n[runs] = new, steps
            self._te[runs], self._tr[runs], self._lv[runs] = term, trunc, live
        return (torch.from_numpy(self._obs(new)), torch.from_numpy(reward), torch.from_numpy(term),
                torch.from_numpy(trunc))

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec.env_id}, num_runs={self.num_runs}, num_envs={self.num_envs})"




# ---- CartPole ---------------------------------------------------------------------------------------------------
class CartPole(_ClassicControl):
    """`CartPoleEnv` / `CartPoleVectorEnv`: reward 1 on every step including the terminal one (sutton_barto=False)."""

    spec = EnvSpec("CartPole-v1", 4, "categorical", 2, 500)
    state_dim = 4
    gravity = 9.8
    masscart = 1.0
    masspole = 0.1
    total_mass = masspole + masscart
    length = 0.5
    polemass_length = masspole * length
    force_mag = 10.0
    tau = 0.02
    theta_threshold_radians = 12 * 2 * math.pi / 360
    x_threshold = 2.4

    def _initial_states(self, seeds):
        # CartPoleVectorEnv.reset(seed=s): one generator per run, state [4, N]
        return np.stack([generator(s).uniform(-0.05, 0.05, size=(4, self.num_envs)).T for s in seeds])

    def _obs(self, states):
        return states.astype(np.float32)

    def _dynamics(self, s, a):
        x, x_dot, theta, theta_dot = _components(s)
        force = np.where(a == 1, self.force_mag, -self.force_mag)
        costheta = np.cos(theta)
        sintheta = np.sin(theta)
        temp = (force + self.polemass_length * np.square(theta_dot) * sintheta) / self.total_mass
        thetaacc = (self.gravity * sintheta - costheta * temp) / (
            self.length * (4.0 / 3.0 - self.masspole * np.square(costheta) / self.total_mass))
        xacc = temp - self.polemass_length * thetaacc * costheta / self.total_mass
        new = np.empty_like(s)
        nx = np.add(x, self.tau * x_dot, out=new[..., 0])
        np.add(x_dot, self.tau * xacc, out=new[..., 1])
        nth = np.add(theta, self.tau * theta_dot, out=new[..., 2])
        np.add(theta_dot, self.tau * thetaacc, out=new[..., 3])
        terminated = ((nx < -self.x_threshold) | (nx > self.x_threshold)
                      | (nth < -self.theta_threshold_radians) | (nth > self.theta_threshold_radians))
        return new, np.ones(terminated.shape), terminated


class CartPoleV0(CartPole):
    spec = EnvSpec("CartPole-v0", 4, "categorical", 2, 200)


# ---- Acrobot ----------------------------------------------------------------------------------------------------
class Acrobot(_ClassicControl):
    """`AcrobotEnv` ("book" dynamics, no torque noise): RK4 over dt=0.2, reward -1 per step and 0 on termination."""

    spec = EnvSpec("Acrobot-v1", 6, "categorical", 3, 500)
    state_dim = 4
    dt = 0.2
    LINK_LENGTH_1 = 1.0
    LINK_MASS_1 = 1.0
    LINK_MASS_2 = 1.0
    LINK_COM_POS_1 = 0.5
    LINK_COM_POS_2 = 0.5
    LINK_MOI = 1.0
    MAX_VEL_1 = 4 * _PI
    MAX_VEL_2 = 9 * _PI
    AVAIL_TORQUE = np.array([-1.0, 0.0, 1.0])

    def _initial_states(self, seeds):
        # float32, as AcrobotEnv.reset stores it (its first step promotes to float64 exactly)
        low, high = -0.1, 0.1  # uniform(low, high) draws low + (high - low) * random()
        u = low + (high - low) * episode_doubles(seeds, self.num_envs, 4)
        return u.astype(np.float32).astype(np.float64)

    def _initial_obs(self, states):
        return self._obs(states.astype(np.float32))  # cos/sin of the float32 state, computed in float32

    def _obs(self, states):
        s0, s1, s2, s3 = _components(states)
        return np.stack([np.cos(s0), np.sin(s0), np.cos(s1), np.sin(s1), s2, s3],
                        axis=-1).astype(np.float32)

    def _dsdt(self, theta1, theta2, dtheta1, dtheta2, a):
        """`AcrobotEnv._dsdt` on arrays, same order of operations; `x**2` of a numpy scalar is libm's `pow(x, 2)`."""
        m1, m2 = self.LINK_MASS_1, self.LINK_MASS_2
        l1 = self.LINK_LENGTH_1
        lc1, lc2 = self.LINK_COM_POS_1, self.LINK_COM_POS_2
        I1 = I2 = self.LINK_MOI
        g = 9.8
        pi = _PI
        sin2, cos2 = np.sin(theta2), np.cos(theta2)
        d1 = m1 * lc1**2 + m2 * (l1**2 + lc2**2 + 2 * l1 * lc2 * cos2) + I1 + I2
        d2 = m2 * (lc2**2 + l1 * lc2 * cos2) + I2
        phi2 = m2 * lc2 * g * np.cos(theta1 + theta2 - pi / 2.0)
        phi1 = (-m2 * l1 * lc2 * _libm_square(dtheta2) * sin2
                - 2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * sin2
                + (m1 * lc1 + m2 * l1) * g * np.cos(theta1 - pi / 2)
                + phi2)
        ddtheta2 = (a + d2 / d1 * phi1 - m2 * l1 * lc2 * _libm_square(dtheta1) * sin2 - phi2) / (
            m2 * lc2**2 + I2 - _libm_square(d2) / d1)
        ddtheta1 = -(d2 * ddtheta2 + phi1) / d1
        return dtheta1, dtheta2, ddtheta1, ddtheta2

    def _dynamics(self, s, a):
        torque = self.AVAIL_TORQUE[a]
        y0 = tuple(_components(s))
        dt = self.dt - 0  # rk4(derivs, y0, [0, dt])
        dt2 = dt / 2.0
        k1 = self._dsdt(*y0, torque)
        k2 = self._dsdt(*(y + dt2 * k for y, k in zip(y0, k1)), torque)
        k3 = self._dsdt(*(y + dt2 * k for y, k in zip(y0, k2)), torque)
        k4 = self._dsdt(*(y + dt * k for y, k in zip(y0, k3)), torque)
        new = np.empty_like(s)
        for j in range(4):
            np.add(y0[j], dt / 6.0 * (k1[j] + 2 * k2[j] + 2 * k3[j] + k4[j]), out=new[..., j])
        for j in (0, 1):  # wrap(x, -pi, pi), same repeated subtraction as gymnasium
            x = new[..., j]
            while (over := x > _PI).any():
                np.subtract(x, 2 * _PI, out=x, where=over)
            while (under := x < -_PI).any():
                np.add(x, 2 * _PI, out=x, where=under)
        np.clip(new[..., 2], -self.MAX_VEL_1, self.MAX_VEL_1, out=new[..., 2])
        np.clip(new[..., 3], -self.MAX_VEL_2, self.MAX_VEL_2, out=new[..., 3])
        terminated = -np.cos(new[..., 0]) - np.cos(new[..., 1] + new[..., 0]) > 1.0
        reward = np.where(terminated, 0.0, -1.0)
        return new, reward, terminated


# ---- Pendulum ---------------------------------------------------------------------------------------------------
class Pendulum(_ClassicControl):
    """`PendulumEnv` (g=10): reward -(angle_normalize(θ)² + 0.1 θdot² + 0.001 u²), never terminates."""

    spec = EnvSpec("Pendulum-v1", 3, "gaussian", 1, 200, (-2.0,), (2.0,))
    state_dim = 2
    max_speed = 8
    max_torque = 2.0
    dt = 0.05
    g = 10.0
    m = 1.0
    l = 1.0  # noqa: E741 - gymnasium's name

    def _initial_states(self, seeds):
        high = np.array([np.pi, 1.0])
        low = -high
        return low + (high - low) * episode_doubles(seeds, self.num_envs, 2)

    def _obs(self, states):
        theta, thetadot = _components(states)
        return np.stack([np.cos(theta), np.sin(theta), thetadot], axis=-1).astype(np.float32)

    def _dynamics(self, s, a):
        th, thdot = _components(s)
        g, m, l, dt = self.g, self.m, self.l, self.dt  # noqa: E741 - gymnasium's names, to compare line by line
        u = np.clip(a[..., 0].astype(np.float32), -self.max_torque, self.max_torque)  # float32, as gymnasium's
        # `0.001 * (u**2)` and `3.0 / (m * l**2) * u` are float32 products (NumPy 2 promotion of a python float)
        costs = (_libm_square((th + np.pi) % (2 * np.pi) - np.pi) + 0.1 * _libm_square(thdot)
                 + np.float32(0.001) * _libm_square(u))
        newthdot = thdot + (3 * g / (2 * l) * np.sin(th) + np.float32(3.0 / (m * l**2)) * u) * dt
        newthdot = np.clip(newthdot, -self.max_speed, self.max_speed)
        newth = th + newthdot * dt
        new = np.stack([newth, newthdot], axis=-1)
        return new, -costs, np.zeros(th.shape, dtype=bool)


# ---- MountainCar ------------------------------------------------------------------------------------------------
class MountainCar(_ClassicControl):
    """`MountainCarEnv` (goal_velocity=0): reward -1 per step, terminates at position >= 0.5 with velocity >= 0."""

    spec = EnvSpec("MountainCar-v0", 2, "categorical", 3, 200)
    state_dim = 2
    min_position = -1.2
    max_position = 0.6
    max_speed = 0.07
    goal_position = 0.5
    goal_velocity = 0
    force = 0.001
    gravity = 0.0025

    def _initial_states(self, seeds):
        low, high = -0.6, -0.4
        position = low + (high - low) * episode_doubles(seeds, self.num_envs, 1)
        return np.concatenate([position, np.zeros_like(position)], axis=-1)

    def _obs(self, states):
        return states.astype(np.float32)

    def _dynamics(self, s, a):
        position, velocity = _components(s)
        velocity = velocity + ((a - 1) * self.force + np.cos(3 * position) * (-self.gravity))
        velocity = np.clip(velocity, -self.max_speed, self.max_speed)
        position = np.clip(position + velocity, self.min_position, self.max_position)
        velocity[(position == self.min_position) & (velocity < 0)] = 0.0
        terminated = (position >= self.goal_position) & (velocity >= self.goal_velocity)
        new = np.stack([position, velocity], axis=-1)
        return new, np.full(position.shape, -1.0), terminated


# ---- the short corridor (Sutton & Barto, Example 13.1) -----------------------------------------------------------
class ShortCorridor(_ClassicControl):
    """`ablations/ShortCorridor-v0` (`ablations.envs.short_corridor`, its `transition`): the state is the position
    (0..2, 3 = G); every episode starts at 0, the observation is the constant 0; no random numbers."""

    spec = EnvSpec(short_corridor.ENV_ID, 1, "categorical", 2, short_corridor.MAX_STEPS)
    state_dim = 1

    def _initial_states(self, seeds):
        return np.zeros((len(seeds), self.num_envs, 1))

    def _obs(self, states):
        return np.zeros((*states.shape[:-1], 1), dtype=np.float32)

    def _dynamics(self, s, a):
        new = short_corridor.transition(s[..., 0].astype(np.int64), a)
        return new[..., None].astype(np.float64), np.full(new.shape, -1.0), new == short_corridor.N_STATES


NATIVE_ENVS: dict[str, type[_ClassicControl]] = {
    cls.spec.env_id: cls for cls in (CartPole, CartPoleV0, Acrobot, Pendulum, MountainCar, ShortCorridor)
}
