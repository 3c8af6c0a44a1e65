"""The decision rules a study is read with, defined once: the family-wise α, and the equivalence margin a study
states (`[report] margin`), parsed once: a number in the metric's units, or a multiple of the pooled within-config SD
written as a string such as "0.25sd"; default 0.25 SD. Lives in `study` so the study file's validation (`design`),
a sequential study's stopping rule (`study.sequential`) and the report (`report.rules`, `report.equivalence`, which
resolves and uses the margin) share one rule; pure, no numpy beyond `Margin.resolve`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Family-wise significance level of every decision: the report's tests (`report.rules.ALPHA`) and a sequential
#: study's confidence sequences (`study.sequential`).
ALPHA = 0.05
#: The default equivalence margin, in pooled within-config SDs of the metric.
DEFAULT_MARGIN_SD = 0.25

_SD_FORM = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(sd|sds)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Margin:
    """An equivalence margin: `value` in the metric's units (`unit` = "metric") or in pooled within-config SDs
    (`unit` = "sd")."""

    value: float
    unit: str = "sd"

    def resolve(self, pooled: float) -> float:
        """The margin in the metric's units, given the pooled within-config SD (NaN if it is needed and unknown)."""
        if self.unit == "metric":
            return float(self.value)
        return float(self.value * pooled) if np.isfinite(pooled) and pooled > 0 else float("nan")

    def describe(self) -> str:
        """E.g. "0.25 pooled within-config SDs" or "10 (in the metric's units)"."""
        if self.unit == "sd":
            return f"{self.value:g} pooled within-config SDs"
        return f"{self.value:g} (in the metric's units)"


DEFAULT_MARGIN = Margin(DEFAULT_MARGIN_SD, "sd")


def parse_margin(value: Any, field: str = "[report] margin") -> Margin:
    """The margin a study states: None → the default (0.25 SDs); a positive number → metric units; a string "<x>sd"
    (e.g. "0.25sd", "0.5 SD") → x pooled within-config SDs; a string holding a positive number → metric units.
    Anything else raises ValueError naming `field` and the allowed forms."""
    allowed = (f"allowed: a positive number in the metric's units (e.g. {field.split()[-1]} = 10) or a positive "
               f"multiple of the pooled within-config SD as a string (e.g. {field.split()[-1]} = \"0.25sd\")")
    if value is None:
        return DEFAULT_MARGIN
    if isinstance(value, bool):
        raise ValueError(f"{field} = {value!r} is not a margin; {allowed}")
    if isinstance(value, (int, float)):
        x, unit = float(value), "metric"
    elif isinstance(value, str):
        m = _SD_FORM.match(value)
        if m:
            x, unit = float(m.group(1)), "sd"
        else:
            try:
                x, unit = float(value), "metric"
            except ValueError:
                raise ValueError(f"{field} = {value!r} is not a margin; {allowed}") from None
    else:
        raise ValueError(f"{field} = {value!r} is not a margin; {allowed}")
    if not (math.isfinite(x) and x > 0):
        raise ValueError(f"{field} = {value!r} must be positive and finite; {allowed}")
    return Margin(x, unit)
