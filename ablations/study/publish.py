"""Publishing a study's results in the repository, and reproducing them.

`pack` turns a finished results directory into what is committed: `runs.csv`, `timings.csv` and `manifest.json`
as they are; `curves.csv` and `probes.csv` with floats rounded to `DIGITS` significant digits and xz-compressed
(`*.csv.xz`, deterministic bytes); and `SHA256SUMS`, the hashes of the full-precision `runs.csv`, `curves.csv` and
`probes.csv`. With `delete_sources`, the cohort parts and the full-precision large files are removed (otherwise they are kept).

`reproduce` reruns the study from its file into a fresh directory and checks that the new full-precision CSVs have
exactly the published hashes (bit-identical results) and that their packed form equals the committed files. Bits are
only promised on the same machine class (`ablations.study.machine`): `machine_match` says whether the published manifest's
class is this machine's; if not, the CLI compares the results statistically (`ablations.report.agreement`).
"""

from __future__ import annotations

import hashlib
import io
import lzma
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .machine import CLASS_FIELDS

DIGITS = 6
PACKED = ("curves.csv", "probes.csv")  # rounded and compressed
HASHED = ("runs.csv", "curves.csv", "probes.csv")
SUMS = "SHA256SUMS"


class PublishError(ValueError):
    """The directory cannot be packed or reproduced as asked."""


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def rounded_csv(text: str, digits: int = DIGITS) -> str:
    """CSV text with every non-integer numeric cell rounded to `digits` significant digits (others verbatim)."""
    df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    for col in df.columns:
        values = pd.to_numeric(df[col].replace("", np.nan), errors="coerce")
        text_col = df[col]
        is_num = values.notna() | (text_col == "")
        if not bool(is_num.all()) or bool(text_col.str.fullmatch(r"-?\d*").all()):
            continue  # not numeric, or integers: keep the text
        arr = values.to_numpy(dtype=np.float64)
        formatted = np.char.mod(f"%.{digits}g", arr).astype(object)
        formatted[np.isnan(arr) & (text_col == "").to_numpy()] = ""
        df[col] = formatted
    return df.to_csv(index=False, lineterminator="\n")


def _xz(text: str) -> bytes:
    return lzma.compress(text.encode(), preset=9 | lzma.PRESET_EXTREME)


def read_text(path: Path) -> str:
    """A results CSV's text, from `name` or its packed `name.xz`."""
    if path.exists():
        return path.read_text(encoding="utf-8")
    packed = path.with_name(path.name + ".xz")
    if packed.exists():
        return lzma.decompress(packed.read_bytes()).decode()
    raise PublishError(f"{path}: file not found (nor {packed.name})")


def pack(results_dir: str | Path, digits: int = DIGITS, *, delete_sources: bool = False) -> dict[str, int]:
    """Pack a finished results directory in place (see the module docstring) → bytes written per file. The
    full-precision curves.csv / probes.csv and the cohort parts are removed only with `delete_sources`."""
    root = Path(results_dir)
    for name in ("runs.csv", "curves.csv", "manifest.json"):
        if not (root / name).exists():
            raise PublishError(f"{root}: {name} is missing; pack a finished `ablations run` results directory")
    sums = {name: sha256(root / name) for name in HASHED if (root / name).exists()}
    (root / SUMS).write_text("".join(f"{h}  {n}\n" for n, h in sums.items()), encoding="utf-8")
    written = {}
    for name in PACKED:
        src = root / name
        if src.exists():
            data = _xz(rounded_csv(src.read_text(encoding="utf-8"), digits))
            (root / (name + ".xz")).write_bytes(data)
            written[name + ".xz"] = len(data)
            if delete_sources:
                src.unlink()
    if delete_sources:
        shutil.rmtree(root / "cohorts", ignore_errors=True)
        (root / ".lock").unlink(missing_ok=True)
    return written


@dataclass
class FileCheck:
    name: str
    identical: bool
    detail: str


def compare(published: str | Path, fresh: str | Path, digits: int = DIGITS) -> list[FileCheck]:
    """Check a fresh (unpacked) results directory against a published (packed) one."""
    pub, new = Path(published), Path(fresh)
    sums_path = pub / SUMS
    if not sums_path.exists():
        raise PublishError(f"{pub}: {SUMS} is missing; this directory was not packed with `ablations pack`")
    sums = dict(reversed(line.split("  ", 1)) for line in sums_path.read_text().splitlines() if line.strip())
    checks = []
    for name, digest in sums.items():
        path = new / name
        if not path.exists():
            checks.append(FileCheck(name, False, "missing in the fresh run"))
            continue
        got = sha256(path)
        checks.append(FileCheck(name, got == digest, "sha256 matches the published full-precision file"
                                if got == digest else f"sha256 {got[:16]}… differs from published {digest[:16]}…"))
    for name in PACKED:
        if not (pub / (name + ".xz")).exists():
            continue
        same = rounded_csv(read_text(new / name), digits) == read_text(pub / name)
        checks.append(FileCheck(name + ".xz", same, "packed form identical" if same else "packed form differs"))
    return checks


@dataclass
class MachineMatch:
    """Were the published results and the fresh run made by the same machine class (`ablations.study.machine`)?"""

    same: bool
    published: list[str]  # class keys in the published manifest ("unknown" where it predates machine records)
    fresh: list[str]
    differences: dict[str, tuple[Any, Any]]  # field → (published, fresh), for a single class on each side

    def describe(self) -> str:
        """A sentence: which machine class made the published results and which made the fresh ones."""
        if self.same:
            return f"this machine is of the same class as the one that made the published results ({self.fresh[0]})"
        if not self.published or "unknown" in self.published:
            return ("the published manifest does not record the machine class that made it, so this machine "
                    f"({', '.join(self.fresh)}) cannot be assumed to follow the same code paths")
        diff = "; ".join(f"{k}: {a!r} → {b!r}" for k, a, b in ((k, *v) for k, v in self.differences.items()))
        return (f"this is another machine class (published {', '.join(self.published)}, here {', '.join(self.fresh)}"
                + (f": {diff}" if diff else "") + ")")


def machine_match(published_manifest: Mapping[str, Any] | None,
                  fresh_manifest: Mapping[str, Any] | None) -> MachineMatch:
    """Compare the `machines` recorded in two manifests (see `ResultsDir.machines`)."""
    pub = dict((published_manifest or {}).get("machines") or {})
    new = dict((fresh_manifest or {}).get("machines") or {})
    pub_keys, new_keys = sorted(pub) or ["unknown"], sorted(new) or ["unknown"]
    same = pub_keys == new_keys and "unknown" not in pub_keys
    differences: dict[str, tuple[Any, Any]] = {}
    if len(pub) == 1 and len(new) == 1:
        (a,), (b,) = pub.values(), new.values()
        differences = {k: (a.get(k), b.get(k)) for k in CLASS_FIELDS if a.get(k) != b.get(k)}
    return MachineMatch(same, pub_keys, new_keys, differences)


def run_id_mismatch(published: Sequence[str] | None, expected: Sequence[str]) -> str:
    """'' if the published manifest lists exactly the run ids the study expands to, else a short description."""
    if published is None:
        return "the published manifest lists no run ids"
    missing, extra = set(expected) - set(published), set(published) - set(expected)
    if not missing and not extra:
        return ""
    return (f"{len(missing):,} of the study's {len(set(expected)):,} run ids are not in the published results, "
            f"which have {len(extra):,} others")
