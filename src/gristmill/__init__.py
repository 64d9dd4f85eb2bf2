"""gristmill: the data engine for training and judging large language models."""

__version__ = "0.1.0"
