"""What an archive's INPUTs name: bags, videos, folders searched for them and text files listing paths.

Each input found is one task. Its identity is its absolute path, its size
and its modification time (for a bag folder: the sum of its files' sizes
and the latest of their times), so a rerun knows which inputs it has scored.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

BAG_FILE_SUFFIXES = ('.mcap', '.db3')
VIDEO_SUFFIXES = ('.mp4', '.avi', '.mov', '.mkv')
LIST_SUFFIXES = ('.txt', '.list')
BAG, VIDEO = 'bag', 'video'
SESSION_BAG = 'session_bag'  # a bag found to hold a session record (known once a worker has opened it)


@dataclass(frozen=True)
class ArchiveInput:
    """One input of the archive: a bag (folder or lone file) or a video, with its identity."""

    source: str  # absolute path
    kind: str  # BAG or VIDEO
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class InputFailure:
    """An input that could not be scored, with the one-line reason."""

    source: str
    kind: str
    reason: str


def is_bag_folder(folder: Path) -> bool:
    """A rosbag2 bag folder: metadata.yaml, or the storage files a killed recorder leaves without it."""
    if (folder / 'metadata.yaml').is_file():
        return True
    return any(child.is_file() and child.suffix in BAG_FILE_SUFFIXES for child in folder.iterdir())


def identity(path: Path) -> tuple[int, int]:
    """(size, mtime_ns) of a file, or of every file under a folder (the sum, the latest)."""
    if path.is_file():
        stat = path.stat()
        return stat.st_size, stat.st_mtime_ns
    files = [child.stat() for child in path.rglob('*') if child.is_file()]
    return sum(s.st_size for s in files), max((s.st_mtime_ns for s in files), default=path.stat().st_mtime_ns)


def discover(inputs: Sequence[str | Path], *, exclude: Path | None = None
             ) -> tuple[list[ArchiveInput], list[InputFailure]]:
    """Every input named, in the order given (a folder's in name order), each once; and what names nothing
    that can be scored. exclude: a folder never searched (the archive's own output)."""
    found: dict[str, ArchiveInput] = {}
    failures: list[InputFailure] = []
    skip = exclude.resolve() if exclude is not None else None
    for path in _expand(inputs, failures, skip, set()):
        source = str(path)
        if source in found:
            continue
        kind = VIDEO if path.suffix.lower() in VIDEO_SUFFIXES else BAG
        try:
            size, mtime_ns = identity(path)
        except OSError as error:
            failures.append(InputFailure(source, kind, f'cannot read: {error.strerror or error}'))
            continue
        found[source] = ArchiveInput(source, kind, size, mtime_ns)
    return list(found.values()), failures


def _expand(inputs: Iterable[str | Path], failures: list[InputFailure], skip: Path | None,
            lists: set[Path]) -> Iterable[Path]:
    for given in inputs:
        path = Path(given).expanduser().absolute()
        if not path.exists():
            failures.append(InputFailure(str(path), '', 'no such file or folder'))
        elif path.is_dir():
            yield from _search(path, skip)
        elif path.suffix.lower() in LIST_SUFFIXES:
            yield from _read_list(path, failures, skip, lists)
        elif path.suffix.lower() in VIDEO_SUFFIXES + BAG_FILE_SUFFIXES:
            yield path
        else:
            failures.append(InputFailure(str(path), '', 'not a bag, a video (' + ', '.join(VIDEO_SUFFIXES)
                                         + '), a folder or a list of paths (' + ', '.join(LIST_SUFFIXES) + ')'))


def _search(folder: Path, skip: Path | None) -> Iterable[Path]:
    """A bag folder itself, or every bag and video under the folder (hidden entries and `skip` left out)."""
    if skip is not None and folder.resolve() == skip:
        return
    if is_bag_folder(folder):
        yield folder
        return
    for child in sorted(folder.iterdir()):
        if child.name.startswith('.'):
            continue
        if child.is_dir():
            yield from _search(child, skip)
        elif child.suffix.lower() in VIDEO_SUFFIXES:
            yield child


def _read_list(path: Path, failures: list[InputFailure], skip: Path | None, lists: set[Path]) -> Iterable[Path]:
    """The paths a text file lists, one a line (# comments and blank lines skipped), relative to its folder."""
    if path.resolve() in lists:
        return
    lists.add(path.resolve())
    try:
        lines = path.read_text(encoding='utf-8').splitlines()
    except (OSError, UnicodeDecodeError) as error:
        failures.append(InputFailure(str(path), '', f'cannot read the list of paths: {error}'))
        return
    names = [line.strip() for line in lines if line.strip() and not line.strip().startswith('#')]
    yield from _expand([path.parent / name for name in names], failures, skip, lists)
