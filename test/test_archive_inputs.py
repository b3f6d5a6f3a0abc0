"""What score-archive's INPUTs name: every bag and video under a folder found once, whatever the tree."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from facesym_ros.archive.inputs import BAG, VIDEO, discover, identity

NAMES = st.text('abcxyz-_0', min_size=1, max_size=6)
LEAVES = st.sampled_from(['video.mp4', 'clip.AVI', 'notes.txt', 'frame.png', 'bag', 'bag-without-metadata'])
TREES = st.recursive(st.dictionaries(NAMES, LEAVES, max_size=4),
                     lambda children: st.dictionaries(NAMES, children, max_size=4), max_leaves=12)


def _build(folder: Path, tree: dict, expected: dict[str, str], hidden: bool = False) -> None:
    for name, child in tree.items():
        path = folder / name
        if isinstance(child, dict):
            path.mkdir()
            _build(path, child, expected, hidden or name.startswith('.'))
            continue
        if child in ('bag', 'bag-without-metadata'):
            path.mkdir()
            (path / f'{name}_0.mcap').write_bytes(b'mcap')
            (path / 'inner.mp4').write_bytes(b'a video inside a bag is part of the bag')
            if child == 'bag':
                (path / 'metadata.yaml').write_text('rosbag2_bagfile_information: {}\n')
            kind = BAG
        else:
            path = folder / f'{name}-{child}'
            path.write_bytes(b'x')
            kind = VIDEO if child.lower().endswith(('.mp4', '.avi')) else ''
        if kind and not hidden:
            expected[str(path)] = kind


@settings(max_examples=40, deadline=None)
@given(tree=TREES, hidden=st.dictionaries(NAMES, LEAVES, max_size=2))
def test_every_bag_and_video_under_a_folder_is_found_once(tree, hidden):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / 'archive'
        root.mkdir()
        expected: dict[str, str] = {}
        _build(root, tree, expected)
        (root / '.trash').mkdir()
        _build(root / '.trash', hidden, {})
        output = root / 'out'
        output.mkdir(exist_ok=True)
        (output / 'rescored.mp4').write_bytes(b'x')  # the archive's own output is never an input
        listed = Path(folder) / 'inputs.txt'
        listed.write_text('# twice, and the folder again\narchive\n' + '\n'.join(expected) + '\n')
        found, failures = discover([root, listed, root], exclude=output)
    assert {item.source: item.kind for item in found} == expected
    assert len(found) == len(expected) and not failures


def test_what_names_nothing_to_score_is_a_failure_with_its_reason(tmp_path):
    (tmp_path / 'notes.pdf').write_bytes(b'x')
    listed = tmp_path / 'list.txt'
    listed.write_text('missing.mp4\nlist.txt\n')  # a list naming itself is read once
    found, failures = discover([tmp_path / 'notes.pdf', tmp_path / 'gone', listed])
    assert not found
    assert [(Path(f.source).name, f.reason) for f in failures] == [
        ('notes.pdf', 'not a bag, a video (.mp4, .avi, .mov, .mkv), a folder or a list of paths (.txt, .list)'),
        ('gone', 'no such file or folder'), ('missing.mp4', 'no such file or folder')]


def test_a_bag_folder_changes_identity_when_any_of_its_files_does(tmp_path):
    bag = tmp_path / 'bag'
    bag.mkdir()
    (bag / 'metadata.yaml').write_text('a')
    (bag / 'bag_0.mcap').write_bytes(b'1234')
    size, mtime = identity(bag)
    assert size == 5
    os.utime(bag / 'bag_0.mcap', ns=(mtime + 10**9, mtime + 10**9))
    assert identity(bag) == (5, mtime + 10**9)
    (bag / 'bag_0.mcap').write_bytes(b'12345')
    assert identity(bag)[0] == 6
