"""The `facesym` command: score videos, bags and archives; make synthetic asymmetry; run, record, check, view the graph.

Every command lives in a module of this package with an add_parsers(commands)
that adds its sub-parsers, each with set_defaults(run=function). Library code
(core/, ros/, bag/, nodes/, config/, clinic/, archive/) never imports from here.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMAND_MODULES = ('video', 'graph', 'bag', 'clinic', 'status', 'view', 'console', 'deploy', 'archive')


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='facesym', description='Objective facial-asymmetry scores for one-sided facial paralysis.')
    commands = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')
    for name in COMMAND_MODULES:
        importlib.import_module(f'{__name__}.{name}').add_parsers(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (ValueError, FileNotFoundError, OSError, TimeoutError) as error:
        print(f'facesym {args.command}: error: {error}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == '__main__':
    sys.exit(main())
