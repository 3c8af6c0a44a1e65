"""Episode seeding as gymnasium's `SyncVectorEnv` does it, vectorized, for the native envs (`envs.native`).

`SyncVectorEnv.reset(seed=s)` seeds episode i with `Generator(PCG64(SeedSequence(s + i)))`. Building one generator
costs ~15 µs, so `episode_doubles` replays SeedSequence's hash and PCG64's 128-bit LCG in uint64 array arithmetic for
many episodes at once (`pcg64_doubles`), bit for bit (`tests/envs/test_native.py::
test_pcg64_doubles_match_numpy_generator` checks it against numpy's own generator). Its own module: one concern
(reproducing numpy's seeding), apart from the envs' physics.
"""

from __future__ import annotations

import numpy as np


def generator(seed: int) -> np.random.Generator:
    """The generator gymnasium's `seeding.np_random(seed)` builds."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(int(seed))))


# `SyncVectorEnv.reset(seed=s)` seeds episode i with `Generator(PCG64(SeedSequence(s + i)))`. Building one generator
# costs ~15 µs, so a run of 64 episodes would cost ~1 ms per reset; below, SeedSequence's hash and PCG64's 128-bit LCG
# are replayed with uint64 array arithmetic for all episodes at once (checked against numpy in the tests).
_M32 = np.uint64(0xFFFFFFFF)
_INIT_A, _MULT_A, _INIT_B, _MULT_B = 0x43B0D7E5, 0x931E8875, 0x8B51F9DD, 0x58F38DED
_MIX_L, _MIX_R = 0xCA01F9DD, 0x4973F715
_PCG_MULT_HI, _PCG_MULT_LO = np.uint64(2549297995355413924), np.uint64(4865540595714422341)


def _hashmix(v: np.ndarray, h: int, mult: int) -> tuple[np.ndarray, int]:
    """SeedSequence's `hashmix` on uint32 arrays; the hash constant `h` is the same for every seed, a python int."""
    v = v ^ np.uint32(h)
    h = (h * mult) & 0xFFFFFFFF
    v = v * np.uint32(h)
    return v ^ (v >> np.uint32(16)), h


def _seed_state(seeds: np.ndarray) -> np.ndarray:
    """`SeedSequence(seed).generate_state(4, np.uint64)` for each seed < 2**64 → uint64 [k, 4]."""
    with np.errstate(over="ignore"):
        # entropy words (little-endian uint32); a seed < 2**32 has one word, and the pool pads with zeros alike
        words = [(seeds & _M32).astype(np.uint32), (seeds >> np.uint64(32)).astype(np.uint32)]
        words += [np.zeros_like(words[0])] * 2
        h, mixer = _INIT_A, []
        for w in words:
            v, h = _hashmix(w, h, _MULT_A)
            mixer.append(v)
        for i_src in range(4):
            for i_dst in range(4):
                if i_src != i_dst:
                    v, h = _hashmix(mixer[i_src], h, _MULT_A)
                    r = np.uint32(_MIX_L) * mixer[i_dst] - np.uint32(_MIX_R) * v
                    mixer[i_dst] = r ^ (r >> np.uint32(16))
        h, out = _INIT_B, []
        for i in range(8):
            v, h = _hashmix(mixer[i % 4], h, _MULT_B)
            out.append(v.astype(np.uint64))
    return np.stack([out[2 * j] | (out[2 * j + 1] << np.uint64(32)) for j in range(4)], axis=-1)


def _mul64(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Full 64×64 → (hi, lo) products of uint64 arrays."""
    a_lo, a_hi, b_lo, b_hi = a & _M32, a >> np.uint64(32), b & _M32, b >> np.uint64(32)
    ll, lh, hl, hh = a_lo * b_lo, a_lo * b_hi, a_hi * b_lo, a_hi * b_hi
    mid = (ll >> np.uint64(32)) + (lh & _M32) + (hl & _M32)
    lo = (ll & _M32) | (mid << np.uint64(32))
    hi = hh + (lh >> np.uint64(32)) + (hl >> np.uint64(32)) + (mid >> np.uint64(32))
    return hi, lo


def _lcg_step(hi: np.ndarray, lo: np.ndarray, inc_hi: np.ndarray,
              inc_lo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PCG64's 128-bit LCG step on (hi, lo) uint64 halves: state = state * MULT + inc (mod 2**128)."""
    p_hi, p_lo = _mul64(lo, _PCG_MULT_LO)
    p_hi = p_hi + hi * _PCG_MULT_LO + lo * _PCG_MULT_HI
    n_lo = p_lo + inc_lo
    n_hi = p_hi + inc_hi + (n_lo < p_lo).astype(np.uint64)
    return n_hi, n_lo


def pcg64_doubles(seeds: np.ndarray, n: int) -> np.ndarray:
    """The first n `Generator(PCG64(SeedSequence(seed))).random()` draws for each seed < 2**64 → float64 [k, n].

    PCG64 seeding (`pcg64_set_seed`): (initstate, initseq) = the 4 words of `generate_state` as two (hi, lo) pairs;
    state = 0, inc = 2·initseq + 1, step, state += initstate, step. A draw: step, then the XSL-RR output
    rotr64(hi ^ lo, hi >> 58); `random()` = (output >> 11) · 2**-53.
    """
    seeds = np.asarray(seeds, dtype=np.uint64)
    with np.errstate(over="ignore"):
        v = _seed_state(seeds)
        s_hi, s_lo, i_hi, i_lo = v[..., 0], v[..., 1], v[..., 2], v[..., 3]
        inc_hi = (i_hi << np.uint64(1)) | (i_lo >> np.uint64(63))
        inc_lo = (i_lo << np.uint64(1)) | np.uint64(1)
        hi, lo = _lcg_step(np.zeros_like(s_hi), np.zeros_like(s_lo), inc_hi, inc_lo)
        lo2 = lo + s_lo
        hi = hi + s_hi + (lo2 < lo).astype(np.uint64)
        hi, lo = _lcg_step(hi, lo2, inc_hi, inc_lo)
        out = []
        for _ in range(n):
            hi, lo = _lcg_step(hi, lo, inc_hi, inc_lo)
            x = hi ^ lo
            rot = hi >> np.uint64(58)
            r = (x >> rot) | (x << ((np.uint64(64) - rot) & np.uint64(63)))
            out.append((r >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0))
    return np.stack(out, axis=-1)


_VECTORIZE_FROM = 64  # episodes per reset call from which the array replay beats one generator per episode


def episode_doubles(seeds: np.ndarray, num_envs: int, n: int) -> np.ndarray:
    """`Generator(PCG64(SeedSequence(s + i))).random(n)` for run seeds s [k], episodes i < N → float64 [k, N, n]."""
    ints = [int(s) for s in seeds]
    k = len(ints)
    if k * num_envs >= _VECTORIZE_FROM and min(ints) >= 0 and max(ints) + num_envs <= 2**64:
        flat = (np.array(ints, dtype=np.uint64)[:, None] + np.arange(num_envs, dtype=np.uint64)).reshape(-1)
        return pcg64_doubles(flat, n).reshape(k, num_envs, n)
    return np.array([[generator(s + i).random(n) for i in range(num_envs)] for s in ints]).reshape(k, num_envs, n)
