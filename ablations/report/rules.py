"""The report's decision rules, each defined once: the significance level α, the power the minimum detectable
differences are stated at, and the equivalence margin for "no effect" claims. Every module of the report imports
them from here (and the tables carry them as columns: `margin`, `alpha`, `ci_level`)."""

from __future__ import annotations

from ablations.study.margin import ALPHA as STUDY_ALPHA, DEFAULT_MARGIN_SD

#: Family-wise significance level: Holm-adjusted p < ALPHA is "significant"; TOST at ALPHA for equivalence (defined
#: in `ablations.study.margin`, which a sequential study's stopping rule reads too).
ALPHA = STUDY_ALPHA
#: Power at which minimum detectable differences (`mdd`) and seeds needed are stated.
POWER = 0.8
#: The default equivalence margin for "no effect" claims (TOST), in pooled within-config SDs of the metric: defined
#: with the `[report] margin` rule in `ablations.study.margin` (the study file states it), named here for the report.
EQUIVALENCE_SD = DEFAULT_MARGIN_SD

