"""Docs that cannot rot: README.md and docs/ checked against the code.

- every shell block marked `bash runnable` runs (against the bundled sample, a few seconds each); the blocks of
  one file share a fresh folder and run in order; `bash runnable root` runs in the repository root;
- every other bash block says in its first line why it is not run;
- every node, topic, parameter, quality flag and `facesym` subcommand and option the docs name exists;
- docs/ros-api.md is the generated one, and the README keeps its shape (length, the two commands, the quick starts);
- the generated queue_size text says what each node's queue holds, and the rig quick start names its camera source.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from facesym_ros.clinic.protocol import SessionSettings
from facesym_ros.clinic.session_record import PROMPT_TOPIC, SESSION_INFO_TOPIC
from facesym_ros.config import registry
from facesym_ros.config.node_settings import NodeQueueSettings, RespawnSettings
from facesym_ros.config.params import ROS_PARAMETERS, parameter_names
from facesym_ros.core.frame import PATCH_MARGIN
from facesym_ros.core.scoring import QualityFlag

ROOT = Path(__file__).resolve().parents[1]
GENERATED = {ROOT / 'docs' / 'ros-api.md'}
DOCS = [ROOT / 'README.md', *sorted((ROOT / 'docs').glob('*.md'))]
PROSE = [path for path in DOCS if path not in GENERATED]
NOT_RUN = '# Not run in the docs test:'
BLOCK = re.compile(r'^```(\w*)([^\n]*)\n(.*?)^```', re.S | re.M)
PENDING_FILES = {
    # Pages and pictures that other parts of the work add; a link to them may come before the file.
    'docs/deploy-ros2.md', 'docs/console.md', 'docs/licences.md', 'docs/landmarks.md', 'docs/archive.md',
    'docs/reading-the-report.md',
    'docs/report-first-page.png',
}
PENDING_COMMANDS = {'console', 'score-archive'}
"""`facesym` subcommands that other parts of the work add; the docs may name them before they exist."""
BLOCK_TIMEOUT = 400.0
"""A guard against a block that hangs, not a speed target: the demo's graph starts slowly on a loaded computer."""


@dataclasses.dataclass(frozen=True)
class Block:
    path: Path
    line: int
    language: str
    words: tuple[str, ...]
    text: str

    @property
    def runnable(self) -> bool:
        return 'runnable' in self.words

    def __str__(self) -> str:
        return f'{self.path.relative_to(ROOT)}:{self.line}'


def blocks(path: Path) -> list[Block]:
    text = path.read_text()
    return [Block(path, text.count('\n', 0, match.start()) + 1, match.group(1), tuple(match.group(2).split()),
                  match.group(3)) for match in BLOCK.finditer(text)]


def shell_blocks(paths: list[Path] = DOCS) -> list[Block]:
    return [block for path in paths for block in blocks(path) if block.language in ('bash', 'sh', 'shell')]


def prose(path: Path) -> str:
    """The text outside fenced blocks."""
    return BLOCK.sub('', path.read_text())


# ---- runnable blocks ---------------------------------------------------------------------------------------

RUNNABLE_FILES = sorted({block.path for block in shell_blocks() if block.runnable})


def test_there_are_runnable_blocks_in_the_readme_and_the_guides():
    names = {path.name for path in RUNNABLE_FILES}
    assert {'README.md', 'clinician-guide.md', 'offline-and-bags.md'} <= names


def test_every_block_that_is_not_run_says_why():
    silent = [str(block) for block in shell_blocks()
              if not block.runnable and not block.text.lstrip().startswith(NOT_RUN)]
    assert silent == [], f'mark these `bash runnable`, or begin them with "{NOT_RUN} <why>"'


def _run_block(block: Block, folder: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env['PATH'] = f'{ROOT / ".venv" / "bin"}{os.pathsep}{env.get("PATH", "")}'
    env['VIRTUAL_ENV'] = str(ROOT / '.venv')
    script = f'set -euo pipefail\n{block.text}'
    process = subprocess.Popen(['bash', '-c', script], cwd=ROOT if 'root' in block.words else folder, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=BLOCK_TIMEOUT)
    except subprocess.TimeoutExpired:
        output = ''
    finally:
        with contextlib.suppress(ProcessLookupError):  # whatever the block left in the background goes with it
            os.killpg(process.pid, signal.SIGTERM)
        process.wait()
    return subprocess.CompletedProcess(block.text, process.returncode, output)


@pytest.mark.parametrize('path', RUNNABLE_FILES, ids=lambda path: path.name)
def test_runnable_blocks_run(path: Path):
    with tempfile.TemporaryDirectory(prefix='facesym-docs-') as folder:
        for block in shell_blocks([path]):
            if not block.runnable:
                continue
            result = _run_block(block, Path(folder))
            assert result.returncode == 0, f'{block} failed (exit status {result.returncode}):\n{result.stdout[-3000:]}'


# ---- names -------------------------------------------------------------------------------------------------

def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> set[str]:
    options = {option for action in parser._actions for option in action.option_strings}
    for sub in _subparsers(parser).values():
        options |= _options(sub)
    return options


@pytest.fixture(scope='module')
def commands() -> dict[str, argparse.ArgumentParser]:
    from facesym_ros.cli import build_parser
    return _subparsers(build_parser())


def _command_lines() -> list[tuple[str, str]]:
    """(where, command line) of every `facesym ...` command in the docs' blocks and inline code."""
    lines = []
    for path in PROSE:
        for block in blocks(path):
            text = block.text.replace('\\\n', ' ')
            for line in text.splitlines():
                for part in re.split(r'&&|;|\||&', line.split('  #')[0].split(' # ')[0]):
                    if re.match(r'\s*(\.venv/bin/)?facesym\s', part):
                        lines.append((str(block), part.strip()))
        for code in re.findall(r'`((?:\.venv/bin/)?facesym [^`]+)`', prose(path)):
            lines.append((str(path.relative_to(ROOT)), code))
    return lines


def test_every_facesym_command_and_option_the_docs_name_exists(commands):
    wrong = []
    for where, line in _command_lines():
        words = shlex.split(line.replace('...', ''), comments=True)
        if len(words) < 2 or words[1].startswith('-'):
            continue
        name = words[1]
        if name.endswith(':') or name in PENDING_COMMANDS:  # `facesym record: error: ...` is a message
            continue
        if name not in commands:
            wrong.append(f'{where}: no subcommand facesym {name}')
            continue
        known = _options(commands[name])
        options = words[2:words.index('--')] if '--' in words else words[2:]  # after `--`: another command's
        wrong += [f'{where}: facesym {name} has no option {word.split("=")[0]}' for word in options
                  if word.startswith('--') and word.split('=')[0] not in known]
    assert wrong == []


def test_every_subcommand_named_in_prose_exists(commands):
    named = {match for path in PROSE for match in re.findall(r'`(?:\.venv/bin/)?facesym ([a-z][a-z-]*)', prose(path))}
    assert named - set(commands) - PENDING_COMMANDS == set()


def _topics() -> set[str]:
    topics = {topic for spec in registry.NODES for topic in (*spec.subscribes, *spec.publishes)}
    topics |= {spec.topic(name) for spec in registry.NODES for name in spec.subscribes}
    return topics | {PROMPT_TOPIC, SESSION_INFO_TOPIC, registry.DIAGNOSTICS_TOPIC, '/clock'}


def _message_fields() -> set[str]:
    fields = set()
    for path in (ROOT / 'msg').glob('*.msg'):
        for line in path.read_text().splitlines():
            words = line.split('#')[0].split()
            if len(words) >= 2:
                fields.add(words[1].split('=')[0])
    return fields


def _launch_arguments() -> set[str]:
    return set(re.findall(r"DeclareLaunchArgument\('(\w+)'", (ROOT / 'launch' / 'facesym.launch.py').read_text()))


ALSO_KNOWN = {
    # keys of the score JSON (facesym score --json, score-bag --json)
    'vs_left', 'vs_right', 'threshold_factor', 'frames_without_face', 'frames_read', 'frames_skipped',
    'landmark_backend',
    # other names the docs use that are not node, topic, parameter or flag names
    'heatmap_total', 'session_bag', 'rmem_max', 'wmem_max', 'single_threaded', 'events', 'facesym_ros',
    'console_scripts', 'add_parsers', 'COMMAND_MODULES', 'ros__parameters',
    # image encodings
    'bayer_rggb8',
}


def _known_names() -> set[str]:
    names = set(registry.NODE_NAMES) | _topics() | _message_fields() | _launch_arguments() | set(ROS_PARAMETERS)
    names |= {name for spec in registry.NODES for name in parameter_names(spec.name)}
    names |= {field.name for cls in (RespawnSettings, SessionSettings) for field in dataclasses.fields(cls)}
    names |= {flag.name.lower() for flag in QualityFlag}
    names |= set(re.findall(r'^\| `(\w+)` \| `\w+/srv/', (ROOT / 'docs' / 'ros-api.md').read_text(), re.M))  # services
    names |= {path.stem for path in (ROOT / 'bench').glob('bench_*.py')}
    names |= {line.split('==')[0].lower().replace('-', '_').replace('.', '_')  # pinned packages
              for line in (ROOT / 'constraints.txt').read_text().splitlines() if '==' in line}
    names |= set(re.findall(r'^\s*- name: (\w+)', (ROOT / 'config' / 'protocol.yaml').read_text(), re.M))  # tasks
    # keys of report.json and the score JSON, and functions the docs name: they must exist in the package's code
    source = '\n'.join(path.read_text() for path in (ROOT / 'facesym_ros').rglob('*.py') if 'msg' not in path.parts)
    names |= set(re.findall(r"'([a-z][a-z0-9]*(?:_[a-z0-9]+)+)'", source))
    names |= set(re.findall(r'^\s*def ([a-z]\w+)\(', source, re.M))
    return names | ALSO_KNOWN


def test_every_snake_case_name_in_backticks_is_a_node_topic_parameter_or_flag():
    """`queue_size`, `low_motion`, `face_patch`, `analysis_interocular: 80`: a renamed one shows up here."""
    known = _known_names()
    unknown = []
    for path in PROSE:
        for code in re.findall(r'`([^`\n]+)`', prose(path)):
            match = re.fullmatch(r'/?([a-z][a-z0-9]*(?:_[a-z0-9]+)+)(?::=?\s*\S.*)?', code.strip())
            if match and match.group(1) not in known and f'/{match.group(1)}' not in known:
                unknown.append(f'{path.relative_to(ROOT)}: `{code}`')
    assert unknown == []


def test_node_dot_parameter_names_exist():
    """`optical_flow.heatmap_max` names a node and one of its parameters."""
    wrong = []
    for path in PROSE:
        for node_name, name in re.findall(rf'\b({"|".join(registry.NODE_NAMES)})\.([a-z_]+)\b', path.read_text()):
            if name not in parameter_names(node_name):
                wrong.append(f'{path.relative_to(ROOT)}: {node_name}.{name}')
    assert wrong == []


def test_the_readme_node_table_is_the_registry():
    text = (ROOT / 'README.md').read_text()
    table = text[text.index('## ROS interface at a glance'):]
    rows = {}
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip('|').split('|')]
        if len(cells) == 3 and cells[0].startswith('`') and cells[0].strip('`') in registry.NODE_NAMES:
            rows[cells[0].strip('`')] = tuple(tuple(re.findall(r'`([^`]+)`', cell)) for cell in cells[1:])
    assert rows == {spec.name: (spec.subscribes, spec.publishes) for spec in registry.NODES}


def test_local_links_and_paths_exist():
    missing = []
    for path in PROSE:
        text = path.read_text()
        links = [(path.parent / target).resolve() for target in re.findall(r'\]\(([^)#\s]+)(?:#[^)]*)?\)', text)
                 if not re.match(r'[a-z]+:', target)]
        paths = [ROOT / target for target in re.findall(
            r'`((?:config|docs|facesym_ros|test|bench|msg|launch|scripts)/[\w./-]+\.\w+)`', text)]
        for target in (*links, *paths):
            if not target.exists() and str(target.relative_to(ROOT)) not in PENDING_FILES:
                missing.append(f'{path.relative_to(ROOT)}: {target.relative_to(ROOT)}')
    assert missing == []


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r'[^\w\- ]', '', heading.strip().lower()).replace(' ', '-')


def test_anchors_of_local_links_exist():
    missing = []
    for path in PROSE:
        for target, anchor in re.findall(r'\]\(([^)#\s]*)#([^)\s]+)\)', path.read_text()):
            page = (path.parent / target).resolve() if target else path
            if not page.exists():
                continue  # a page still to come (test_local_links_and_paths_exist)
            slugs = {_slug(line.lstrip('#')) for line in prose(page).splitlines() if line.startswith('#')}
            if anchor not in slugs:
                missing.append(f'{path.relative_to(ROOT)}: {target}#{anchor}')
    assert missing == []


# ---- the README's shape and plain sentences ---------------------------------------------------------------

def test_the_readme_is_short_with_the_two_commands_and_the_quick_starts_first():
    lines = (ROOT / 'README.md').read_text().splitlines()
    assert len(lines) <= 200
    first_screen = '\n'.join(lines[:25])
    ci = (ROOT / '.ci' / 'run').read_text().strip().splitlines()[-1]
    assert './scripts/setup.sh && .venv/bin/facesym demo' in first_screen
    assert ci in first_screen, 'the README shows the command CI runs'
    headings = {line: number for number, line in enumerate(lines, start=1) if line.startswith('## ')}
    assert headings['## Quick start: clinician'] <= 60 and headings['## Quick start: rig'] <= 60


def _sentences(path: Path) -> list[str]:
    text = prose(path)
    text = '\n'.join(line for line in text.splitlines()
                     if not line.lstrip().startswith(('|', '#', '![', '<!--', '>')))
    text = re.sub(r'`[^`]*`', 'CODE', text)
    text = re.sub(r'\[([^\]]*)\]\([^)]*\)', r'\1', text)
    text = re.sub(r'\s+', ' ', text)
    text = re.sub(r'\b(e\.g|i\.e|vs)\.', r'\1', text)
    return [s.strip() for s in re.split(r'(?<=[.!?])\s+(?=\S)|(?<=[:;])\s+(?=[A-Z0-9`*("-])', text) if s.strip()]


MAX_WORDS = 32
"""One idea a sentence, under about 30 words."""


def test_sentences_are_short():
    long = [f'{path.relative_to(ROOT)}: {len(sentence.split())} words: {sentence}' for path in PROSE
            for sentence in _sentences(path) if len(sentence.split()) > MAX_WORDS]
    assert long == []


def test_no_word_of_issues_or_of_this_machine():
    offenders = [f'{path.relative_to(ROOT)}: {match.group(0)}' for path in PROSE
                 for match in re.finditer(r'this machine|\bissue \d+|\bissues? #\d+', path.read_text(), re.I)]
    assert offenders == []


# ---- generated and checked texts ---------------------------------------------------------------------------

def test_the_ros_api_page_is_the_generated_one():
    from facesym_ros.ros.ros_api import GENERATE_COMMAND, render_ros_api_md
    assert (ROOT / 'docs' / 'ros-api.md').read_text() == render_ros_api_md(), f'stale: {GENERATE_COMMAND}'


def test_the_ros_api_page_lists_every_node_topic_and_parameter():
    text = (ROOT / 'docs' / 'ros-api.md').read_text()
    for spec in registry.NODES:
        section = text.split(f'\n## {spec.name}\n')[1].split('\n## ')[0]
        for topic in (*spec.subscribes, *spec.publishes):
            assert f'| `{topic}`' in section, (spec.name, topic)
        for name in parameter_names(spec.name):
            assert f'| `{name}` |' in section, (spec.name, name)


def test_queue_size_text_says_what_each_node_holds():
    """Nodes on the camera's image hold whole frames; nodes on face_patch hold patches; the sizes follow."""
    field = next(f for f in dataclasses.fields(NodeQueueSettings) if f.name == 'queue_size')
    text = field.metadata['description']
    queued = [spec for spec in registry.NODES if NodeQueueSettings in spec.settings_classes()]
    frames = {spec.name for spec in queued if 'image' in spec.subscribes}
    patches = {spec.name for spec in queued if 'face_patch' in spec.subscribes}
    whole = re.search(r'([\w ]+?) hold whole frames: (\d+) MB at 640x480 bgr8', text)
    patch = re.search(r'([\w ]+?) hold face patches[^:]*: (\d+) MB for a (\d+) px face', text)
    assert whole and patch, text
    assert set(re.findall(r'[a-z]+_[a-z_]+|annotator', whole.group(1))) == frames
    assert set(re.findall(r'[a-z]+_[a-z_]+|annotator', patch.group(1))) == patches
    depth = field.default
    assert int(whole.group(2)) == round(depth * 640 * 480 * 3 / 1e6)
    side = round(int(patch.group(3)) * (1 + 2 * PATCH_MARGIN))
    assert int(patch.group(2)) == round(depth * side * side * 3 / 1e6)
    assert 'quarter' in text and PATCH_MARGIN == 0.25


def test_the_rig_quick_start_names_its_camera_source():
    """The graph's default source is the sample clip: every rig command says which camera it takes."""
    text = (ROOT / 'README.md').read_text()
    section = text[text.index('## Quick start: rig'):].split('\n## ')[0]
    launches = [line for block in BLOCK.finditer(section) for line in block.group(3).splitlines()
                if re.match(r'(facesym bringup|ros2 launch)', line)]
    assert launches
    for line in launches:
        assert re.search(r'--source (camera(:\d+)?|none)\b|source:=(camera(:\d+)?|none)\b', line), line
    wrong = [f'{block}: {line}' for block in shell_blocks(PROSE) for line in block.text.splitlines()
             if re.match(r'\s*(facesym bringup|ros2 launch)', line) and re.search(r'camera|rig', line, re.I)
             and not re.search(r'--source \S|source:=\S', line)]
    assert wrong == [], 'a command said to use the camera must name it: the default source is the sample'


if __name__ == '__main__':
    sys.exit(pytest.main([__file__, '-q']))
