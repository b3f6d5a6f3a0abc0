"""The report's first page and its PDF, on a generated session whose patient's left half is frozen in two tasks.

The session (helpers/session_video.py) follows the default protocol with every task 1.2 s long: the sample
clip's real smile in every task, the patient's left half held still during close_eyes_tightly and snarl. The
clip's forehead does not move, so raise_brows is flagged low_motion: its forehead SS means nothing.
Set FACESYM_UPDATE_DOCS=1 to copy the first page's screenshot and the PDF's first page into docs/.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import os
import re
import shutil
import subprocess
from pathlib import Path

import cv2
import pytest
import yaml

from facesym_ros.clinic.face_map import scale_value
from facesym_ros.clinic.protocol import SessionSettings, load_protocol, protocol_from_text, read_protocol_text
from facesym_ros.clinic.report_html import SessionInfo, build_session_report, region_lines, render_html
from facesym_ros.clinic.report_pdf import NoChromiumError, chromium_browser, write_report_pdf
from facesym_ros.clinic.task_result import MotionTrace, TaskResult
from facesym_ros.core.scoring import (
    NO_FLAGS,
    Quality,
    QualityFlag,
    RegionScore,
    ScoringSettings,
    score_frames,
    symmetry_score,
)
from helpers.cli import facesym
from helpers.session_video import write_session_video

FROZEN = ('close_eyes_tightly', 'snarl')  # an eye task and a cheek task; the patient's left half is frozen
LEAD_IN = 0.4
DURATION = 1.2
SUBJECT, SESSION, DATE = 'P-0042', 'S-1', '2026-03-02'
DOCS = Path(__file__).resolve().parent.parent / 'docs'


def _keep_for_docs(picture: Path, name: str) -> None:
    if os.environ.get('FACESYM_UPDATE_DOCS') == '1':
        shutil.copyfile(picture, DOCS / name)


@pytest.fixture(scope='module')
def report_dir(tmp_path_factory) -> Path:
    """`facesym report --pdf` of the generated session."""
    root = tmp_path_factory.mktemp('first_page')
    document = yaml.safe_load(read_protocol_text()[0])
    for task in document['tasks']:
        task['duration'] = DURATION
    protocol_file = root / 'protocol.yaml'
    protocol_file.write_text(yaml.safe_dump(document))
    protocol = protocol_from_text(protocol_file.read_text(), str(protocol_file))
    video = root / 'session.avi'
    write_session_video(video, protocol, LEAD_IN, FROZEN, tail=0.2)
    spans, start = [], 0.0
    for _ in protocol.tasks:
        start += LEAD_IN
        spans.append(f'{start:g}:{start + DURATION:g}')
        start += DURATION
    output = root / 'report'
    result = facesym('report', video, '--tasks', ','.join(spans), '--protocol', protocol_file, '--subject', SUBJECT,
                     '--session', SESSION, '--date', DATE, '--output', output, '--pdf', timeout=600)
    assert result.returncode == 0, result.stderr
    assert 'raise_brows          SS forehead -- (not counted: no movement: task not done?)' in result.stdout
    return output


def _payload(report_dir: Path) -> dict:
    return json.loads((report_dir / 'report.json').read_text())


def _rgb(css: str) -> tuple[int, int, int]:
    return tuple(int(v) for v in re.findall(r'\d+', css)[:3])


POLYGONS = """selector => [...document.querySelectorAll(selector + ' polygon.region')].map(p => ({
    region: p.dataset.region, side: p.dataset.side, ss: p.dataset.ss, fill: getComputedStyle(p).fill,
    weaker: p.classList.contains('weaker'), void: p.classList.contains('void')}))"""


def test_the_first_page_shows_the_scores_on_the_face_and_in_plain_words(report_dir, tmp_path):
    payload = _payload(report_dir)
    tasks = {task['name']: task for task in payload['tasks']}
    means = payload['summary']['regions']
    with chromium_browser() as browser:
        page = browser.new_page(viewport={'width': 800, 'height': 1000})
        page.goto((report_dir / 'report.html').as_uri())
        # the session's map: every tinted region side reads back, on the colour scale, as its region's mean SS
        session_map = page.evaluate(POLYGONS, '#face-map')
        assert len(session_map) == 6
        for side in session_map:
            mean = means[side['region']]['value']
            if mean is None:
                assert side['void'] and side['fill'].startswith('url(') and side['ss'] == ''
                continue
            assert abs(scale_value(_rgb(side['fill'])) - mean) <= 1 / 255 + 1e-9, side
            assert side['weaker'] == (side['side'] == 'left'), side  # the frozen side is marked
        # each task's map is tinted by that task's SS; the frozen tasks' regions are the lowest of their region
        tinted: dict[str, dict[str, float]] = {}
        for name, task in tasks.items():
            for side in page.evaluate(POLYGONS, f'#map-{name}'):
                value = task['regions'][side['region']]['symmetry']['value']
                if not side['void']:
                    assert abs(scale_value(_rgb(side['fill'])) - value) <= 1 / 255 + 1e-9, (name, side)
                    tinted.setdefault(side['region'], {})[name] = scale_value(_rgb(side['fill']))
        for frozen, region in (('close_eyes_tightly', 'eye'), ('snarl', 'cheek')):
            others = [tinted[region][t] for t in tasks if region in tasks[t]['primary'] and t != frozen
                      and not tasks[t]['baseline']]
            assert tinted[region][frozen] < min(others) - 0.05, (region, tinted[region])
        # the plain-words lines name the frozen side (the patient's left) as the weaker one
        lines = page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('#region-lines li')]
            .map(li => [li.dataset.region, {text: li.textContent, weaker: li.dataset.weaker,
                                            grey: li.classList.contains('void')}]))""")
        for region in ('eye', 'cheek'):
            assert lines[region]['weaker'] == 'left'
            assert f"the patient's left side moved less; SS {means[region]['value']:.2f}" in lines[region]['text']
        assert lines['cheek']['text'].startswith('Cheek (smile, snarl, pucker): ')
        # the low_motion forehead of raise_brows: greyed, never bold, out of every mean, with its reason
        assert 'low_motion' in tasks['raise_brows']['quality']['flags']
        assert means['forehead']['value'] is None
        left_out = [(e['task'], e['reason']) for e in means['forehead']['excluded']]
        assert left_out == [('raise_brows', 'no movement: task not done?')]
        assert lines['forehead']['grey'] and 'not counted: raise brows (no movement: task not done?)' in \
            lines['forehead']['text']
        cell = page.locator('#task-raise_brows td').first.locator('span.void').first
        assert cell.inner_text().startswith('SS 1.000') or cell.inner_text().startswith('SS 0.9')
        style = cell.evaluate('e => [getComputedStyle(e).fontWeight, getComputedStyle(e).color]')
        assert style[0] == '400' and _rgb(style[1]) == (0x77, 0x77, 0x77)
        assert page.locator('#task-raise_brows td').first.locator('.primary').count() == 0
        index = page.locator('#facesym-index').inner_text()
        assert index.startswith('no facesym index') and 'forehead' in index  # not a mean over a void score
        assert page.locator('#subject').inner_text() == SUBJECT and page.locator('#date').inner_text() == DATE
        shot = tmp_path / 'report-first-page.png'
        page.locator('#first-page').screenshot(path=str(shot))
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[0] > 500 and float(image.std()) > 20
    _keep_for_docs(shot, 'report-first-page.png')


def _pdf_pages(pdf: Path) -> list[str]:
    info = subprocess.run(['pdfinfo', str(pdf)], capture_output=True, text=True, check=True).stdout
    count = int(re.search(r'^Pages:\s+(\d+)', info, re.MULTILINE).group(1))
    return [subprocess.run(['pdftotext', '-layout', '-f', str(n), '-l', str(n), str(pdf), '-'],
                           capture_output=True, text=True, check=True).stdout for n in range(1, count + 1)]


def _page_size(pdf: Path) -> str:
    info = subprocess.run(['pdfinfo', str(pdf)], capture_output=True, text=True, check=True).stdout
    return re.search(r'^Page size:\s+(.*)$', info, re.MULTILINE).group(1)


def test_the_pdf_has_every_task_and_the_patient_on_every_page(report_dir, tmp_path):
    pdf = report_dir / 'report.pdf'
    tasks = [task['name'] for task in _payload(report_dir)['tasks']]
    for paper, file, size in (('A4', pdf, '(A4)'), ('Letter', tmp_path / 'letter.pdf', '(letter)')):
        if paper == 'Letter':  # as a server's handler would call it: on a running asyncio loop
            async def print_letter(target: Path) -> Path:
                return write_report_pdf(report_dir / 'report.html', target, paper='Letter')
            assert asyncio.run(print_letter(file)) == file
        assert size in _page_size(file)
        pages = _pdf_pages(file)
        # the first page, the summary and task table, a page per task, the method
        assert len(tasks) + 3 <= len(pages) <= len(tasks) + 5, (paper, len(pages))
        for number, text in enumerate(pages, start=1):
            assert f'subject {SUBJECT} · session {SESSION} · {DATE}' in text, (paper, number)
            assert f'page {number} of {len(pages)}' in text, (paper, number)
        assert 'Facial symmetry assessment' in pages[0] and 'Cheek (smile, snarl, pucker)' in pages[0]
        for task in tasks:  # in the task table, and at the head of a page of its own
            assert any(task in text for text in pages[1:3]), task
            assert any(re.search(rf'^\s*{task} — ', text.split('\n', 3)[-1], re.MULTILINE) for text in pages), task
    subprocess.run(['pdftoppm', '-png', '-r', '80', '-f', '1', '-l', '1', '-singlefile', str(pdf),
                    str(tmp_path / 'report-pdf-page1')], check=True, capture_output=True)
    image = cv2.imread(str(tmp_path / 'report-pdf-page1.png'))
    assert image is not None and image.shape[0] > image.shape[1] and float(image.std()) > 20
    _keep_for_docs(tmp_path / 'report-pdf-page1.png', 'report-pdf-page1.png')


def test_without_chromium_one_line_says_so_and_the_html_is_written(tmp_path):
    output = tmp_path / 'r'
    result = facesym('report', '--sample', '--tasks', '0:0.3,0.3:0.6,0.6:0.9,0.9:1.2,1.2:1.6,1.6:2.0,2.0:2.4',
                     '--subject', 'P', '--session', 'S', '-o', output, '--pdf',
                     env={**os.environ, 'FACESYM_CHROMIUM': str(tmp_path / 'no-chromium')})
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if 'report.pdf' in line]
    assert lines == [f'facesym report: report.pdf not written: FACESYM_CHROMIUM={tmp_path / "no-chromium"} is not '
                     'a program; report.html is']
    assert (output / 'report.html').is_file() and not (output / 'report.pdf').exists()


# ----- the first page's words on scores with known numbers ------------------------------------------------

def _score(vs: dict[str, tuple[float, float]], flags: QualityFlag = NO_FLAGS):
    base = score_frames([], ScoringSettings())
    regions = tuple(RegionScore(r, left, right, symmetry_score(left, right, 3.8)) for r, (left, right) in vs.items())
    return dataclasses.replace(base, regions=regions, flow_pair_count=10, frame_count=11, quality=Quality(flags=flags))


def _report(cheek_right: float, previous: tuple[dict, ...] = (), session: str = 'S2', date: str = '2026-04-06'):
    protocol = load_protocol()
    good = _score({'forehead': (0.02, 0.015), 'eye': (0.03, 0.025), 'cheek': (0.05, cheek_right)})
    flagged = _score({'forehead': (0.02, 0.015), 'eye': (0.03, 0.025), 'cheek': (0.05, 0.0)},
                     QualityFlag.MULTIPLE_FACES)  # every SS of pucker means nothing
    tasks = [TaskResult(task, flagged if task.name == 'pucker' else good, MotionTrace.from_motions([]))
             for task in protocol.tasks]
    return build_session_report(tasks, SessionInfo('P', session, date, SessionSettings()), previous)


def test_the_lines_and_the_index_say_how_they_changed_since_the_last_visit():
    first = _report(0.02, session='S1', date='2026-03-02')
    second = _report(0.04, previous=(first.payload,))
    cheek = next(line for line in region_lines(second) if line.region == 'cheek')
    # pucker (another face in view) is left out of the cheek mean and named; the right cheek moved less
    assert cheek.measure.value == pytest.approx(1 - 3.8 * 0.01)
    words = cheek.words('(last visit S1, 2026-03-02)')
    assert words.startswith("Cheek (smile, snarl, pucker): the patient's right side moved less; SS 0.96, up 0.07 "
                            'from 0.89 (last visit S1, 2026-03-02)')
    assert words.endswith('not counted: pucker (another face in view)')
    page = render_html(second)
    index = second.summary.index.value - first.summary.index.value
    assert f'<span id="index-change">{index:+.3f}</span> since the last visit (S1, 2026-03-02)' in page
    assert math.isclose(second.payload['summary']['regions']['cheek']['value'], cheek.measure.value)
    assert second.payload['settings_hash'] == first.payload['settings_hash']
    assert len(first.payload['settings_hash']) == 16


def test_the_pdf_writer_says_in_one_line_that_there_is_no_chromium(monkeypatch, tmp_path):
    page = tmp_path / 'report.html'
    page.write_text('<!DOCTYPE html><html><body>report</body></html>')
    monkeypatch.delenv('FACESYM_CHROMIUM', raising=False)
    monkeypatch.setenv('PATH', str(tmp_path))  # no chromium on it
    with pytest.raises(NoChromiumError, match=r"^no Chromium found \(install Debian's chromium, or set "
                                              r'FACESYM_CHROMIUM\)$'):
        write_report_pdf(page)
    with pytest.raises(ValueError, match='paper must be one of A4, Letter'):
        write_report_pdf(page, paper='A5')
    assert not (tmp_path / 'report.pdf').exists()
