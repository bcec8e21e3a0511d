"""Analysis tools: small, self-contained studies from the papers."""
from .linear_teacher_study import (PAIR_TYPES, LinearStudyConfig,
                                   format_table, plot_results,
                                   results_to_jsonable, run_study, summarize)

__all__ = [
    'PAIR_TYPES', 'LinearStudyConfig', 'format_table', 'plot_results',
    'results_to_jsonable', 'run_study', 'summarize'
]
