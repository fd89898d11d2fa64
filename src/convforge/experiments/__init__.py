"""Studies built from the rest of convforge, each a function plus a report (tables and plots)."""

from convforge.experiments.model_comparison import ComparisonRow, compare_models, comparison_table

__all__ = ["ComparisonRow", "compare_models", "comparison_table"]
