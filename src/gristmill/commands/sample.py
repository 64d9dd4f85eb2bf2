"""Placeholder: commands of this area are being written."""

import click

COMMANDS: list[click.Command] = []
