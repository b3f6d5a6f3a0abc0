// The operator's page. All state is the console's (one WebSocket message holds all of it), so a reload or a
// second page shows the same; this page only draws it and POSTs the operator's actions.
'use strict';
const client = sessionStorage.getItem('facesym-client') || Math.random().toString(36).slice(2) + Date.now().toString(36);
sessionStorage.setItem('facesym-client', client);
const $ = (id) => document.getElementById(id);
let current = null;
let reportShown = '';

function element(tag, text, attributes) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, value);
  return node;
}

async function act(action, body) {
  $('action-note').textContent = '';
  $('start-note').textContent = '';
  const response = await fetch('/api/' + action, {
    method: 'POST', headers: {'Content-Type': 'application/json', 'X-Facesym-Token': facesymToken()},
    body: JSON.stringify(Object.assign({client: client}, body || {}))});
  if (!response.ok) {
    let message = response.statusText;
    try { message = (await response.json()).error; } catch (error) { /* not JSON */ }
    (action === 'start' ? $('start-note') : $('action-note')).textContent = message;
  }
  return response.ok;
}

function ssText(region) {
  return region.ss === null ? 'n/a' : region.ss.toFixed(3);
}

function scoreCell(score, final) {
  const cell = element('td', null, {class: final ? 'final' : 'running'});
  if (!score) return cell;
  for (const region of score.regions) {
    const span = element('span', region.region + ' ', {class: 'ss' + (region.void ? ' void' : ''), 'data-region': region.region});
    const value = element('b', ssText(region), {class: 'value'});
    span.appendChild(value);
    if (region.void) span.appendChild(element('small', ' (' + region.void + ')'));
    cell.appendChild(span);
  }
  cell.appendChild(element('small', ' ' + score.frames + ' frames' + (final ? '' : ' so far'), {class: 'frames'}));
  return cell;
}

function renderTasks(tasks) {
  const body = $('tasks').querySelector('tbody');
  body.replaceChildren();
  tasks.forEach((task, index) => {
    const row = element('tr', null, {'data-task': task.name, class: 'state-' + task.state.replace(' ', '-')});
    row.appendChild(element('td', String(index + 1)));
    row.appendChild(element('td', task.name + (task.duration ? ' (' + task.duration + ' s)' : ' (operator-paced)')));
    row.appendChild(element('td', task.state, {class: 'state'}));
    row.appendChild(scoreCell(task.final || task.running, !!task.final));
    const flags = element('td', null, {class: 'flags'});
    for (const flag of (task.final || task.running || {flags: []}).flags) {
      flags.appendChild(element('div', flag.words, {title: flag.action, 'data-flag': flag.name}));
    }
    row.appendChild(flags);
    body.appendChild(row);
  });
}

function renderTrend(rows) {
  const svg = $('trend');
  svg.replaceChildren();
  const points = rows.filter((row) => row.index !== null && row.index !== undefined);
  if (points.length < 1) return;
  const ns = 'http://www.w3.org/2000/svg';
  const xs = (i) => points.length === 1 ? 200 : 10 + i * 380 / (points.length - 1);
  const ys = (value) => 70 - value * 60;
  const line = document.createElementNS(ns, 'polyline');
  line.setAttribute('points', points.map((row, i) => xs(i) + ',' + ys(row.index)).join(' '));
  line.setAttribute('class', 'trend-line');
  svg.appendChild(line);
  points.forEach((row, i) => {
    const dot = document.createElementNS(ns, 'circle');
    dot.setAttribute('cx', xs(i)); dot.setAttribute('cy', ys(row.index)); dot.setAttribute('r', 3);
    const title = document.createElementNS(ns, 'title');
    title.textContent = row.date + ' ' + row.session + ': ' + row.index.toFixed(3);
    dot.appendChild(title);
    svg.appendChild(dot);
  });
}

function sessionRows(table, rows, withSubject) {
  const body = $(table).querySelector('tbody');
  body.replaceChildren();
  for (const row of rows) {
    const tr = element('tr', null, {'data-session': row.session});
    if (withSubject) tr.appendChild(element('td', row.subject));
    if (withSubject) tr.appendChild(element('td', row.session));
    tr.appendChild(element('td', row.date));
    if (!withSubject) tr.appendChild(element('td', row.session));
    tr.appendChild(element('td', row.status + (row.reason ? ': ' + row.reason : ''), {class: 'status'}));
    tr.appendChild(element('td', row.index === null || row.index === undefined ? 'n/a' : row.index.toFixed(3)));
    const cell = element('td');
    if (row.report) cell.appendChild(element('a', 'report', {href: '/files/' + row.path + '/report.html', target: '_blank'}));
    tr.appendChild(cell);
    body.appendChild(tr);
  }
}

function render(state) {
  current = state;
  const control = state.control;
  $('control-text').textContent = control.you ? 'You (' + control.name + ') hold control'
    : (control.holder ? 'Watching: control is held by ' + control.holder : 'Nobody holds control');
  $('take-control').hidden = control.you;
  document.body.classList.toggle('watching', !control.you);

  const protocols = $('protocol');
  const names = state.protocols ? state.protocols.map((p) => p.name) : [];
  if (protocols.options.length !== names.length) {
    protocols.replaceChildren(...names.map((name) => element('option', name, {value: name})));
  }
  const session = state.session;
  const running = state.running;
  $('setup').hidden = running || (session !== null && !$('setup').dataset.fresh);
  $('now').hidden = !running;
  $('session-box').hidden = session === null;

  const list = $('readiness');
  list.replaceChildren(...state.readiness.map((check) =>
    element('li', check.name + ': ' + check.text, {class: check.ok ? 'ok' : 'bad', 'data-check': check.name})));

  if (session) {
    $('session-title').textContent = 'Subject ' + session.subject + ', session ' + session.session + ' (' + session.protocol + ')';
    $('session-status').textContent = session.status + (session.reason ? ': ' + session.reason : '') + (session.paused ? ' (paused: the next task waits)' : '');
    $('session-status').dataset.status = session.status;
    renderTasks(session.tasks);
    $('log').textContent = session.log.join('\n');
    $('go').hidden = !session.waiting_for;
    $('go').textContent = session.waiting_for === 'stop' ? 'Stop task' : 'Start task';
    $('go').dataset.waiting = session.waiting_for;
    $('pause').textContent = session.paused ? 'Resume' : 'Pause';
    const done = !running && session.report;
    $('after').hidden = !done;
    if (done) {
      const url = '/files/' + session.path + '/report.html';
      $('folder').textContent = session.folder;
      $('open-report').href = url;
      if (reportShown !== url) { $('report').src = url; reportShown = url; }
    }
  } else {
    $('after').hidden = true;
  }
  const prompt = state.prompt;
  if (running && prompt) {
    $('current-task').textContent = prompt.number ? prompt.number + '/' + prompt.count + ' ' + prompt.task : prompt.instruction;
    $('current-instruction').textContent = prompt.number ? prompt.instruction : '';
    $('countdown').textContent = prompt.countdown;
  }
  $('history-box').hidden = !state.history.length;
  sessionRows('history', state.history, false);
  renderTrend(state.history);
  sessionRows('sessions', state.sessions.slice().reverse(), true);
}

$('start-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const ok = await act('start', {subject: $('subject').value, session: $('session').value, protocol: $('protocol').value});
  if (ok) delete $('setup').dataset.fresh;
});
$('go').addEventListener('click', () => act('go'));
$('pause').addEventListener('click', () => act('pause', {paused: !(current && current.session && current.session.paused)}));
$('skip').addEventListener('click', () => act('skip'));
$('stop').addEventListener('click', () => {
  if (window.confirm('Stop the session? The running task is scored as far as it came; a partial report is written.')) act('stop');
});
$('take-control').addEventListener('click', () => act('control'));
$('new-session').addEventListener('click', () => {
  $('setup').dataset.fresh = '1'; $('after').hidden = true; $('setup').hidden = false;
});
$('setup').dataset.fresh = '1';
if (new URLSearchParams(window.location.search).get('video') === 'off') {
  $('video-note').textContent = 'video off (?video=off)';  // a slow network, a tablet: state and buttons only
} else {
  startVideo($('video'), 'annotated', () => { $('video-note').hidden = true; });
}
startState('/ws/operator?client=' + encodeURIComponent(client), render);
