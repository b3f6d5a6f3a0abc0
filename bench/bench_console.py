"""The clinic console under load: a session at 30 fps on the sample upscaled to a 380 px face, with the
operator and patient pages open in headless Chromium, beside the same session with no page open.

    python -m bench.bench_console [--runs 3] [--seconds 4]

Prints, per condition (median of --runs sessions, each run doing both conditions in turn):
- the frames each trial holds, against the frames of its planned span (all of them is the target);
- the operator page's video rate and latency in the browser (image stamp to drawn on the canvas), against
  the targets of at least 15 fps and under 300 ms, and the patient page's;
- the console process's CPU per camera frame (its own process: the pages' server, the session runner and the
  recorder; the graph's nodes are other processes);
- the CPU of every process on the machine during the tasks, by group (each node, the console, Chromium, the
  rest), in % of one core: what is left of the machine for the graph.
Figures measured on a shared machine are disturbed by whatever else runs: say so beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2

from bench.frames import large_face_frames

RATE = 30.0
TARGET_FPS = 15.0
TARGET_LATENCY_MS = 300.0
TICK = os.sysconf('SC_CLK_TCK')


def protocol_text(seconds: float) -> str:
    tasks = [('rest', 'Keep still.', '[forehead, eye, cheek]', True), ('smile', 'Smile.', '[cheek]', False),
             ('raise_brows', 'Raise your eyebrows.', '[forehead]', False)]
    lines = ['tasks:']
    for name, instruction, primary, baseline in tasks:
        lines += [f'  - name: {name}', f'    instruction: {instruction}', f'    duration: {seconds:g}',
                  f'    primary: {primary}'] + (['    baseline: true'] if baseline else [])
    return '\n'.join(lines) + '\n'


def write_video(path: Path, seconds: float) -> int:
    frames = large_face_frames(repeats=1)
    count = int(RATE * seconds)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), RATE, frames[0].shape[1::-1])
    for index in range(count):
        cycle = index % (2 * len(frames))  # forwards then backwards: no jump
        writer.write(frames[cycle if cycle < len(frames) else 2 * len(frames) - 1 - cycle])
    writer.release()
    return count


def cpu_seconds(pid: int) -> float:
    fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime of the process itself


NODES = ('face_detector', 'landmark_detector', 'optical_flow', 'symmetry_scorer', 'annotator', 'image_source')


def group_of(command: str) -> str:
    """The group a process's command line belongs to: a node's name, 'console', 'chromium' or 'other'."""
    node = next((name for name in NODES if name in command), None)
    if node is not None:
        return node
    if 'chromium' in command:
        return 'chromium'
    return 'console' if 'facesym_ros.cli console' in command else 'other'


def machine_cpu() -> dict[int, tuple[str, float]]:
    """Every process's group and CPU seconds so far."""
    processes = {}
    for entry in Path('/proc').iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / 'cmdline').read_bytes().replace(b'\0', b' ').decode(errors='replace')
                processes[int(entry.name)] = (group_of(command), cpu_seconds(int(entry.name)))
            except (OSError, IndexError, ValueError):  # gone meanwhile
                continue
    return processes


def cpu_by_group(before: dict, after: dict, elapsed: float) -> dict[str, float]:
    """% of one core each group used between the two readings (processes alive at both)."""
    groups: dict[str, float] = {}
    for pid, (group, seconds) in after.items():
        if pid in before and before[pid][0] == group:
            groups[group] = groups.get(group, 0.0) + 100 * (seconds - before[pid][1]) / elapsed
    return groups


def state(page) -> dict:
    return page.evaluate('() => fetch("/api/state").then((r) => r.json())')


def video_stats(page, stream: str) -> dict:
    return page.evaluate(f'() => {{ const s = window.facesymVideo["{stream}"]; '
                         'return s ? {frames: s.frames, latencies: s.latencies.slice()} : null; }')


def one_session(console, browser, control, name: str, *, pages: bool) -> dict:
    """Run one session from the control page; with `pages`, an operator and a patient page watch it."""
    watchers = []
    if pages:
        operator = browser.new_page(viewport={'width': 1280, 'height': 900})
        operator.goto(console.url + '/')
        patient = browser.new_page(viewport={'width': 1280, 'height': 720})
        patient.goto(console.url + '/patient')
        watchers = [('operator', operator, 'annotated'), ('patient', patient, 'camera')]
    started = control.evaluate('''(name) => fetch("/api/start", {method: "POST", headers: {"Content-Type":
        "application/json"}, body: JSON.stringify({client: sessionStorage.getItem("facesym-client"),
        subject: "BENCH", session: name, protocol: "bench"})}).then((r) => r.status)''', name)
    assert started == 200, started
    while not any(task['state'] == 'running' for task in (state(control)['session'] or {}).get('tasks', [])):
        time.sleep(0.1)
    begin = {'at': time.monotonic(), 'cpu': cpu_seconds(console.process.pid), 'machine': machine_cpu(),
             **{label: video_stats(page, stream) for label, page, stream in watchers}}
    while state(control)['prompt']['state'] != 'done':
        time.sleep(0.2)
    end = {'at': time.monotonic(), 'cpu': cpu_seconds(console.process.pid), 'machine': machine_cpu(),
           **{label: video_stats(page, stream) for label, page, stream in watchers}}
    while state(control)['running']:
        time.sleep(0.2)
    elapsed = end['at'] - begin['at']
    result = {'cpu_ms_per_frame': 1000 * (end['cpu'] - begin['cpu']) / (elapsed * RATE),
              'cpu_percent': {group: round(value, 1) for group, value in
                              cpu_by_group(begin['machine'], end['machine'], elapsed).items()}}
    for label, page, _ in watchers:
        if begin[label] is None or end[label] is None:
            result[label] = {'fps': 0.0, 'latency_ms': float('nan')}
        else:
            latencies = end[label]['latencies'][len(begin[label]['latencies']):]
            result[label] = {'fps': (end[label]['frames'] - begin[label]['frames']) / elapsed,
                             'latency_ms': statistics.median(latencies) if latencies else float('nan')}
        page.close()
    report = json.loads((console.output / 'BENCH' / name / 'report.json').read_text())
    result['frames'] = [task['score']['frames'] for task in report['tasks']]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--runs', type=int, default=3, help='sessions per condition (the median is printed)')
    parser.add_argument('--seconds', type=float, default=4.0, help='length of each of the 3 tasks [s]')
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / 'test'))
    from helpers.console import chromium_browser, running_console

    planned = round(args.seconds * RATE)
    with tempfile.TemporaryDirectory(prefix='bench-console-') as temporary:
        folder = Path(temporary)
        video = folder / 'large_face.avi'
        write_video(video, 8 + 3 * (args.seconds + 2.0) + 10)
        (folder / 'protocols').mkdir()
        (folder / 'protocols' / 'bench.yaml').write_text(protocol_text(args.seconds))
        results: dict[str, list[dict]] = {'no page': [], 'both pages': []}
        with running_console(folder / 'sessions', '--source', video, '--frame-rate', RATE, '--lead-in', 2.0,
                             '--protocols', folder / 'protocols', '--no-record') as console, \
                chromium_browser() as browser:
            control = browser.new_page()
            control.goto(console.url + '/?video=off')  # holds control; shows no video
            control.wait_for_selector('#control-text:has-text("hold control")')
            for run in range(args.runs):
                for condition, rows in results.items():
                    result = one_session(console, browser, control, f'{condition.replace(" ", "-")}-{run}',
                                         pages=condition == 'both pages')
                    rows.append(result)
                    print(f'run {run + 1} {condition}: {json.dumps(result)}', file=sys.stderr, flush=True)
    print(f'facesym console, {time.strftime("%Y-%m-%d %H:%M")}, {os.cpu_count()} cores; 3 tasks of '
          f'{args.seconds:g} s at {RATE:g} fps, 640x480, face about 380 px; median of {args.runs} sessions per '
          'condition (the machine may be shared: the figures then carry its load)')
    for condition, rows in results.items():
        frames = [min(row['frames']) for row in rows]
        cpu = statistics.median(row['cpu_ms_per_frame'] for row in rows)
        print(f'{condition:>10}: fewest frames in a trial {statistics.median(frames):.0f} of {planned} planned '
              f'(all runs: {[row["frames"] for row in rows]}) '
              f'{"ok" if min(frames) >= planned - 1 else "FRAMES LOST"}; console CPU {cpu:.2f} ms per frame')
        groups = sorted({group for row in rows for group in row['cpu_percent']}, key=lambda g: (g == 'other', g))
        shares = {group: statistics.median(row['cpu_percent'].get(group, 0.0) for row in rows) for group in groups}
        total = statistics.median(sum(row['cpu_percent'].values()) for row in rows)
        print(f'{"":>12}machine CPU, % of one core of {100 * os.cpu_count()}: ' + ', '.join(
            f'{group} {share:.0f}' for group, share in shares.items()) + f'; all {total:.0f}')
        for label in ('operator', 'patient'):
            if label in rows[0]:
                fps = statistics.median(row[label]['fps'] for row in rows)
                latency = statistics.median(row[label]['latency_ms'] for row in rows)
                target = f'target >= {TARGET_FPS:g} fps: {"met" if fps >= TARGET_FPS else "NOT MET"}; ' \
                         f'< {TARGET_LATENCY_MS:g} ms: {"met" if latency < TARGET_LATENCY_MS else "NOT MET"}'
                print(f'{"":>12}{label} page video {fps:.1f} fps, latency {latency:.0f} ms median ({target})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
