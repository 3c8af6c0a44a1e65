"""ablations: seeded REINFORCE factorials with honest statistics.

Data flows one way: studies/*.toml → `study` → `RunConfig`s → cohorts → executor → `train` → results/ CSVs →
`report` → report/.
"""

__version__ = "0.1.0"
