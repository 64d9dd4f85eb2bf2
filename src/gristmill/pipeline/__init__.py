"""Pipelines: steps (generators over batches), stages, executors (local, Ray)."""

from gristmill.pipeline.run import RunOptions, RunResult, explain, run_pipeline
from gristmill.pipeline.spec import PipelineSpec, load_pipeline, parse_pipeline, register
from gristmill.pipeline.step import GlobalStep, Step, StepContext, StepOutput

__all__ = [
    "GlobalStep",
    "PipelineSpec",
    "RunOptions",
    "RunResult",
    "Step",
    "StepContext",
    "StepOutput",
    "explain",
    "load_pipeline",
    "parse_pipeline",
    "register",
    "run_pipeline",
]
