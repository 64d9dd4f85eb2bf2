"""Curation steps for pre-training text; importing this package registers them."""

from gristmill.curate import (  # noqa: F401  (each module registers its steps)
    decontaminate,
    exact_dedup,
    extract,
    filters,
    language,
    minhash,
    pii,
    where,
)
