#!/usr/bin/env python3
"""Write the quality-flag table of docs/reading-the-report.md from facesym_ros/core/flags.py.

Run after changing a flag's text: `.venv/bin/python scripts/flag_table.py`. test_flags.py checks that the
checked-in table is current.
"""

from __future__ import annotations

import sys
from pathlib import Path

from facesym_ros.core.flags import with_flag_table

DOC = Path(__file__).resolve().parent.parent / 'docs' / 'reading-the-report.md'


def main() -> int:
    text = DOC.read_text(encoding='utf-8')
    updated = with_flag_table(text)
    if updated != text:
        DOC.write_text(updated, encoding='utf-8')
        print(f'{DOC}: flag table updated', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
