"""Data quality metrics of a dataset version and the HTML report (docs/quality.md)."""

from gristmill.quality.build import (
    build_report,
    load_or_build_report,
    load_report,
    save_report,
)
from gristmill.quality.compare import compare_reports
from gristmill.quality.html import render_html
from gristmill.quality.model import (
    MetricChange,
    PIIStats,
    QualityReport,
    ReportComparison,
    ReportOptions,
)
from gristmill.quality.text import RegexTokenizer, load_tokenizer

__all__ = [
    "MetricChange",
    "PIIStats",
    "QualityReport",
    "RegexTokenizer",
    "ReportComparison",
    "ReportOptions",
    "build_report",
    "compare_reports",
    "load_or_build_report",
    "load_report",
    "load_tokenizer",
    "render_html",
    "save_report",
]
