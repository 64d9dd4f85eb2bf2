"""The unit of a pipeline: a step is a generator over batches of records.

A batch is a :class:`pyarrow.Table` of storage rows (one record kind). A step yields,
for each batch, a :class:`StepOutput`: the (possibly rewritten) table, a drop reason
per row (``None`` keeps the row), and optional attributes keyed by record id. The
executor splits kept from dropped rows and counts reasons, so a step never loses a
record silently: a dropped record lands in the exclusions dataset with its reason.

Two shapes of step, as in datatrove:

- :class:`Step`: one batch at a time (filters, redaction, language id).
- :class:`GlobalStep`: needs to see every record first (exact and near-duplicate
  removal). The executor runs its ``collect`` over every input task in parallel,
  merges the partial states with ``merge``, then calls ``process`` with the state.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pyarrow as pa

from gristmill.records.kinds import Kind


@dataclass
class StepOutput:
    table: pa.Table
    drop: list[str | None] | None = None  # reason per row; None (or no list) keeps it
    attributes: dict[str, pa.Table] = field(default_factory=dict)  # each with an `id` column
    counters: dict[str, int] = field(default_factory=dict)  # e.g. {"email redacted": 3}


@dataclass
class StepContext:
    """What a step may need beyond its batch: which records it sees, where it may
    keep files, and the workspace (for steps that read another dataset)."""

    kind: Kind
    rank: int = 0  # the task's index (as in datatrove)
    world_size: int = 1  # the number of tasks
    row_offset: int = 0  # position of the batch's first row in the stage's input of this task
    workspace: Any = None  # gristmill.store.Workspace; Any keeps the layer below store-free
    scratch: Any = None  # pathlib.Path of a folder private to this run


class Step:
    """A per-batch step. Subclasses set ``name`` (the YAML key) and ``kinds`` and
    implement :meth:`process`; parameters are keyword arguments of ``__init__`` and
    are recorded in the run's manifest via :meth:`params`."""

    name: ClassVar[str] = ""
    kinds: ClassVar[tuple[Kind, ...]] = (Kind.DOCUMENT,)

    def __init__(self, **params: Any) -> None:
        self._params = params
        self._ready = False
        self.ctx = StepContext(kind=self.kinds[0])

    def params(self) -> dict[str, Any]:
        return dict(self._params)

    def bind(self, ctx: StepContext) -> None:
        """Give the step its context and run :meth:`setup` once per worker."""
        if ctx.kind not in self.kinds:
            kinds = ", ".join(str(k) for k in self.kinds)
            raise ValueError(f"step {self.name} works on {kinds} records, not {ctx.kind}")
        self.ctx = ctx
        if not self._ready:
            self.setup()
            self._ready = True

    def setup(self) -> None:
        """Load models or tables once per worker, before the first batch."""

    def process(self, table: pa.Table) -> StepOutput:
        raise NotImplementedError

    def run(
        self, batches: Iterable[pa.Table], rank: int = 0, world_size: int = 1
    ) -> Iterator[StepOutput]:
        """The generator the executors call: one output per input batch. ``rank`` and
        ``world_size`` say which share of the records this worker sees."""
        for batch in batches:
            yield self.process(batch)

    def describe(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params.items())
        return f"{self.name}({args})"


class GlobalStep(Step):
    """A step that must see all records before deciding about any (deduplication).

    ``collect`` runs per input task (in parallel workers) and returns a picklable
    partial state; ``merge`` combines them in task order; ``process`` then sees the
    merged state as ``self.state`` (set by the executor with :meth:`set_state`). The state must make
    ``process`` deterministic, so a resumed run decides exactly as an unbroken one.
    """

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.state: Any = None

    def collect(self, table: pa.Table) -> Any:
        """A picklable summary of one task's records (e.g. hashes, signatures)."""
        raise NotImplementedError

    def merge(self, partials: list[Any]) -> Any:
        """Combine the task summaries, in task order, into the state ``process`` uses."""
        raise NotImplementedError

    def set_state(self, state: Any) -> None:
        self.state = state


def keep_all(table: pa.Table) -> StepOutput:
    return StepOutput(table=table, drop=None)
