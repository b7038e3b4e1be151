"""``lexdr report RUN_DIR``: a Markdown report with PNG plots, read from a run directory's files only."""

from lexdr.report.markdown import generated_samples, write_report

__all__ = ["write_report", "generated_samples"]
