"""ablations.report: results/<study>/ CSVs → tables, figures and a markdown report in report/<study>/.

Three layers, over documented DataFrames: compute (`load`; `bootstrap`, `intervals` (per-config t-intervals),
`comparisons`, `families` (Holm with aliases once), `power`, `survival`, `metrics`, `effects`, `equivalence` (TOST,
classes), `contexts` (effects in every context), `verdicts` (averaged only where no interaction of any order says
otherwise), `gradvar`, `tuning`, `sequential` (a sequential study's anytime-valid intervals); multi-env `across`,
`pooled`, `perenv` (per-env labels under each env's own Holm, heterogeneity); run scores from
`ablations.train.scores`; α from `rules`, the margin rule from `ablations.study.margin`) → plots (`plots`: draw what
they are given) → markdown (`markdown`, `markdown_across`, `markdown_tuning`, `markdown_sequential`, `questions`,
words from `text`: write what they are given). `build_report` runs them; it only reads files (`ablations report`
measures missing random scores and records the best run's video first).
"""

from ablations.report.build import build_report
from ablations.report.load import ReportError, load_results

__all__ = ["ReportError", "build_report", "load_results"]
