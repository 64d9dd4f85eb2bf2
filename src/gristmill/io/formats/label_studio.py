"""Placeholder: formats of this family are being written."""

from gristmill.io.formats.base import Format

FORMATS: list[Format] = []
