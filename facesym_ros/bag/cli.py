"""Argument parsers of the bag commands (record, play, score-bag)."""

from __future__ import annotations

import argparse


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """Register the bag subcommands on the `facesym` parser."""
