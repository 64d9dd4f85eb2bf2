"""Synthetic data and AI feedback: generation from a teacher model, self-instruct and
evol-instruct, task categories, judges (ratings and pairwise), human verification.

Every stage reaches models only through ``resolve_language_model`` and the cache, so a
run resumes after a kill with no repeated call, and keeps every failure with its raw
text in the output's ``synth_failures`` attribute and quarantine file."""

from gristmill.synth.categories import categorize, coverage
from gristmill.synth.evol import EvolConfig, evol_instruct
from gristmill.synth.generate import GenerateConfig, generate
from gristmill.synth.judge import HELPSTEER2, JudgeConfig, judge
from gristmill.synth.output import RunResult, read_failures
from gristmill.synth.runner import Failure, RunOptions, SynthError
from gristmill.synth.self_instruct import SelfInstructConfig, self_instruct
from gristmill.synth.verify import agreement, rating_question, verify_sample

__all__ = [
    "HELPSTEER2",
    "EvolConfig",
    "Failure",
    "GenerateConfig",
    "JudgeConfig",
    "RunOptions",
    "RunResult",
    "SelfInstructConfig",
    "SynthError",
    "agreement",
    "categorize",
    "coverage",
    "evol_instruct",
    "generate",
    "judge",
    "rating_question",
    "read_failures",
    "self_instruct",
    "verify_sample",
]
