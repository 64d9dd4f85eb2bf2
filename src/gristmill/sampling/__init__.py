"""Score and sample (DESIGN.md, "score & sample"): the data selection methods of
"How to Train Data-Efficient LLMs" (Sachdeva et al. 2024) and their classic peers.

Scorers are pipeline steps that write attributes (importing this package registers
them): ``ask_llm``, ``perplexity``, ``density``, ``semdedup``, ``prototypes``,
``uncertainty``. :func:`score` runs one as a scoring run over a version (the
scores attach to that version); :func:`sample` selects from the scores into a new
version. Models are reached only through ``gristmill.models`` protocols.
"""

from gristmill.sampling import active, ask_llm, density, perplexity, semantic  # noqa: F401
from gristmill.sampling.api import SampleResult, sample, score, scoring_spec
from gristmill.sampling.select import MissingScores, Plan, Selection, select

SCORERS = ("ask_llm", "perplexity", "density", "semdedup", "prototypes", "uncertainty")

__all__ = [
    "SCORERS",
    "MissingScores",
    "Plan",
    "SampleResult",
    "Selection",
    "sample",
    "score",
    "scoring_spec",
    "select",
]
