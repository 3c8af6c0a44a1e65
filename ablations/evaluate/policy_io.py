"""A run's final policy on disk: its `RunConfig` (canonical JSON) and parameter tensors, in one small file.

``results/<study>/policies/<run_id>.pt`` is a `torch.save`d dict::

    {"format": "ablations.policy/1", "run_id": str, "config": str (RunConfig.canonical_json()),
     "params": [W0, b0, W1, b1, ...]}  # one run's tensors, no run dimension, W as [in, out]

It holds only strings, lists and tensors, so `load_policy` reads it with `torch.load(weights_only=True)`: loading a
policy never runs pickled code. Writes are atomic (`ablations.files.write_atomic`: a temporary file in the same
directory, fsync'ed, then renamed), so a reader sees either no file or a whole one (DESIGN.md invariant 6).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from ..config import ConfigError, RunConfig
from ..files import write_atomic

FORMAT = "ablations.policy/1"
SUFFIX = ".pt"


class PolicyFileError(ValueError):
    """A policy file is missing, unreadable or not a policy written by `save_policy`."""


def policy_path(results_dir: str | Path, run_id: str) -> Path:
    """Where training saves run `run_id`'s final policy: ``results_dir/policies/<run_id>.pt``."""
    return Path(results_dir) / "policies" / f"{run_id}{SUFFIX}"


def as_tensor(p: Tensor | np.ndarray) -> Tensor:
    """A parameter as a tensor: numpy arrays (how a `CohortResult` carries them; read-only when Ray hands them over)
    are copied."""
    return torch.from_numpy(np.array(p)) if isinstance(p, np.ndarray) else p


def save_policy(path: str | Path, config: RunConfig, params: Sequence[Tensor | np.ndarray], *,
                imports: Sequence[str] = (), import_paths: Sequence[str | Path] = ()) -> Path:
    """Write `config` and one run's `params` ([W0, b0, ...], no run dimension) to `path` atomically → `path`.

    `imports` / `import_paths`: the modules (and folders put on `sys.path`) that register a custom env id;
    `load_policy` imports them again, so `eval` and `report` can make the env. Creates the parent directory.
    Tensors are detached, copied to contiguous CPU memory (so a slice never drags its whole cohort's storage into
    the file) and stored in their own dtype.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "run_id": config.run_id,
        "config": config.canonical_json(),
        "params": [as_tensor(p).detach().to("cpu").clone().contiguous() for p in params],
    }
    if imports or import_paths:
        payload["imports"] = list(imports)
        payload["import_paths"] = [str(Path(p).resolve()) for p in import_paths]
    write_atomic(path, lambda fh: torch.save(payload, fh))
    return path


def load_policy(path: str | Path) -> tuple[RunConfig, list[Tensor]]:
    """Read a file written by `save_policy` → (RunConfig, [W0, b0, ...]); raise `PolicyFileError` if it isn't one."""
    path = Path(path)
    if not path.is_file():
        raise PolicyFileError(f"no policy file at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises several types for truncated or foreign files
        raise PolicyFileError(f"{path}: cannot read a policy file ({type(exc).__name__}: {exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise PolicyFileError(f"{path}: not an ablations policy file (format {found!r}, expected {FORMAT!r})")
    config = RunConfig.from_dict(json.loads(payload["config"]), where=str(path))
    if config.run_id != payload.get("run_id"):
        raise PolicyFileError(f"{path}: the stored config hashes to run_id {config.run_id}, but the file says "
                              f"{payload.get('run_id')!r} (written by a different version of RunConfig?)")
    imports, paths = payload.get("imports", []), payload.get("import_paths", [])
    if imports or paths:
        from ..envs.registry import import_modules

        try:
            import_modules(imports, [p for p in paths if Path(p).is_dir()])
        except ConfigError as exc:
            raise PolicyFileError(f"{path}: the policy's environment needs {imports}: {exc}") from None
    params = payload["params"]
    if not isinstance(params, list) or not all(isinstance(p, Tensor) for p in params) or len(params) % 2:
        raise PolicyFileError(f"{path}: 'params' must be a list [W0, b0, W1, b1, ...] of tensors")
    return config, params

