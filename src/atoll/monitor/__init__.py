"""Monitoring: drift, data quality, performance, fairness and operations over time.

Live windows of the prediction log (or a data file) are folded chunk by chunk
into histograms on the reference profile each model package carries, so
memory does not grow with the window and the training data is never needed.
The statistics are pure functions of those folds; :mod:`atoll.monitor.run`
reads the window and stores each check's result. ``atoll.api.monitor_report``
is the public entry point.
"""

from atoll.monitor.report import CHECKS, Report

__all__ = ["CHECKS", "Report"]
