"""Evaluation: tasks (YAML), metrics with bootstrap intervals, the runner, paired
comparison, Bradley-Terry ranking, contamination reports, HTML reports and exports.

The entry points are ``load_task``, ``run_eval``, ``compare_runs``, ``rank_systems`` and
``contamination_report``; ``gristmill eval`` wraps them on the command line."""
