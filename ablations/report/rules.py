"""The report's decision rules, each defined once: the significance level α, the power the minimum detectable
differences are stated at, and the equivalence margin for "no effect" claims. Every module of the report imports
them from here (and the tables carry them as columns: `margin`, `alpha`, `ci_level`)."""

from __future__ import annotations

#: Family-wise significance level: Holm-adjusted p < ALPHA is "significant"; TOST at ALPHA for equivalence.
ALPHA = 0.05
#: Power at which minimum detectable differences (`mdd`) and seeds needed are stated.
POWER = 0.8
#: Equivalence margin for "no effect" claims (TOST), in units of the primary metric's pooled within-config SD.
EQUIVALENCE_SD = 0.25

