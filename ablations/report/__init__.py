"""ablations.report: results/<study>/ CSVs → tables, figures and a markdown report in report/<study>/.

load (validate) → stats / effects / gradvar (compute) → plots (draw) + markdown (text); `build_report` runs them.
"""

from ablations.report.build import build_report
from ablations.report.load import ReportError, load_results

__all__ = ["ReportError", "build_report", "load_results"]
