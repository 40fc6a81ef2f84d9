"""Everything read off finished runs: tables (:mod:`biv.report.tables`), the statistics over
seeds behind them (:mod:`biv.report.statistics`), their HTML (:mod:`biv.report.html`), figures
(:mod:`biv.report.plots`, :mod:`biv.report.figure_text`) and the reproduction report.

Torch-free: imports :mod:`biv.config` and the base modules only; reads the run folders' files.
"""
