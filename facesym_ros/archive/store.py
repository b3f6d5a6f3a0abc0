"""The archive's output folder: one part file per input, the session reports, and the tables built from the parts.

DIR/parts/<key>.json holds one input's identity, the method hash, and its rows or the reason it failed. It is
written to a temporary name and renamed, so it is there whole or not at all: a driver killed at any moment
keeps every input it finished, and no input has two parts. trials.parquet, trials.csv and failures.csv are
built from the parts of the run's inputs (each written whole, then renamed) in the order the inputs were found.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from facesym_ros.archive.inputs import ArchiveInput, InputFailure
from facesym_ros.archive.task import ROW_COLUMNS, InputResult

PARTS = 'parts'
SESSIONS = 'sessions'
TRIALS_PARQUET, TRIALS_CSV, FAILURES_CSV = 'trials.parquet', 'trials.csv', 'failures.csv'
FAILURE_COLUMNS = ('source', 'input_kind', 'reason')
SCORED, FAILED, LOST = 'scored', 'failed', 'lost'
"""A part's status: rows; a failure of the input (not tried again while it and the method are the same);
a task whose worker died every time it ran it (tried again by the next run)."""
INTEGER_COLUMNS = {'source_size', 'source_mtime_ns', 'first_stamp_ns', 'last_stamp_ns', 'frames', 'flow_pairs',
                   'quality_bits'}
FLOAT_COLUMNS = {'vs_left', 'vs_right', 'symmetry', 'lambda', 'threshold_factor'}
ROW_GROUP_ROWS = 10_000


def part_key(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()[:24]


def write_atomic(path: Path, data: bytes) -> None:
    """Write the file whole under a temporary name in its folder, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f'.{path.name}.{os.getpid()}.tmp')
    with temporary.open('wb') as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(temporary, path)


class ArchiveStore:
    """The output folder of an archive run."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.parts = self.directory / PARTS
        self.parts.mkdir(parents=True, exist_ok=True)
        for leftover in self.parts.glob('.*.tmp'):  # a part a killed driver did not finish: never read
            leftover.unlink(missing_ok=True)

    def part(self, source: str) -> dict | None:
        try:
            return json.loads((self.parts / f'{part_key(source)}.json').read_text())
        except (OSError, json.JSONDecodeError):
            return None

    def is_done(self, item: ArchiveInput, method_hash: str) -> bool:
        """Scored (or failed) before with the same identity and method."""
        part = self.part(item.source)
        return (part is not None and part['status'] in (SCORED, FAILED) and part['method_hash'] == method_hash
                and (part['size'], part['mtime_ns']) == (item.size, item.mtime_ns))

    def save(self, item: ArchiveInput, method_hash: str, result: InputResult | None, lost: str = '') -> None:
        """The input's part (and first its session report): rows, or its failure; lost: why no worker finished."""
        report = ''
        if result is not None and result.files and not result.error:
            folder = self._report_folder(item.source, result.session or ('', ''))
            for name, data in result.files.items():
                write_atomic(folder / name, data)
            write_atomic(folder / 'source.txt', (item.source + '\n').encode())
            report = str(folder.relative_to(self.directory))
        identity = {'source_size': item.size, 'source_mtime_ns': item.mtime_ns, 'report': report}
        rows = [] if result is None or result.error else [{**row, **identity} for row in result.rows]
        status = LOST if result is None else FAILED if result.error else SCORED
        part = {'source': item.source, 'kind': result.kind if result is not None else item.kind, 'size': item.size,
                'mtime_ns': item.mtime_ns, 'method_hash': method_hash, 'status': status,
                'reason': lost if result is None else result.error, 'report': report, 'rows': rows}
        write_atomic(self.parts / f'{part_key(item.source)}.json', json.dumps(part).encode())

    def _report_folder(self, source: str, session: tuple[str, str]) -> Path:
        """sessions/SUBJECT/SESSION, or SESSION-<key> when another source holds that session already."""
        subject, session_id = (_safe(name) for name in session)
        folder = self.directory / SESSIONS / subject / session_id
        owner = folder / 'source.txt'
        if owner.is_file() and owner.read_text().strip() != source:
            folder = folder.with_name(f'{session_id}-{part_key(source)[:8]}')
        return folder

    def write_tables(self, inputs: Sequence[ArchiveInput], failures: Sequence[InputFailure]) -> tuple[int, int]:
        """trials.parquet, trials.csv and failures.csv of these inputs' parts; (rows, failures) written."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pa.schema([(name, pa.int64() if name in INTEGER_COLUMNS else
                             pa.float64() if name in FLOAT_COLUMNS else pa.string()) for name in ROW_COLUMNS])
        parquet_temporary = self.directory / f'.{TRIALS_PARQUET}.{os.getpid()}.tmp'
        csv_temporary = self.directory / f'.{TRIALS_CSV}.{os.getpid()}.tmp'
        failed = list(failures)
        count = 0
        with pq.ParquetWriter(parquet_temporary, schema) as parquet, csv_temporary.open('w', newline='') as stream:
            writer = csv.writer(stream)
            writer.writerow(ROW_COLUMNS)
            batch: list[dict] = []
            for item, part in self._parts_of(inputs):
                if part is None:
                    continue
                if part['status'] != SCORED:
                    failed.append(InputFailure(item.source, part['kind'], part['reason']))
                    continue
                for row in part['rows']:
                    writer.writerow([_csv_cell(row[name]) for name in ROW_COLUMNS])
                batch += part['rows']
                count += len(part['rows'])
                if len(batch) >= ROW_GROUP_ROWS:
                    parquet.write_table(pa.Table.from_pylist(batch, schema=schema))
                    batch = []
            parquet.write_table(pa.Table.from_pylist(batch, schema=schema))
        os.replace(parquet_temporary, self.directory / TRIALS_PARQUET)
        os.replace(csv_temporary, self.directory / TRIALS_CSV)
        with (self.directory / f'.{FAILURES_CSV}.tmp').open('w', newline='') as stream:
            writer = csv.writer(stream)
            writer.writerow(FAILURE_COLUMNS)
            for failure in failed:
                writer.writerow([failure.source, failure.kind, failure.reason])
        os.replace(self.directory / f'.{FAILURES_CSV}.tmp', self.directory / FAILURES_CSV)
        return count, len(failed)

    def _parts_of(self, inputs: Sequence[ArchiveInput]) -> Iterator[tuple[ArchiveInput, dict | None]]:
        for item in inputs:  # one part in memory at a time
            yield item, self.part(item.source)


def _csv_cell(value: object) -> str:
    """As `score-bag --csv` writes a cell: floats exact (repr), no score empty."""
    if value is None:
        return ''
    return repr(value) if isinstance(value, float) else str(value)


def _safe(name: str) -> str:
    """A subject or session id as one folder name."""
    cleaned = re.sub(r'[^A-Za-z0-9._-]+', '_', name).strip('._')
    return cleaned or 'unnamed'
