"""Reports of a finished run: a self-contained HTML page and an Open Problems-style JSON export.

``scmib report RUN_DIR`` (also run at the end of ``scmib run``) reads only the
run folder: ``results/results.tsv``, ``results/runs.tsv`` and
``results/run_info.json``.
"""

from scmib.report.build import load_run, write_report

__all__ = ["load_run", "write_report"]
