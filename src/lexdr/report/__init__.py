"""``lexdr report RUN_DIR``: a Markdown report with PNG plots, read from a run directory's files only."""

from lexdr.report.markdown import write_report

__all__ = ["write_report"]
