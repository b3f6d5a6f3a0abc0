// JPEG frames over a WebSocket onto a canvas. Each message: the image stamp [s] (float64, little-endian), then
// the JPEG. A frame that comes while the last one is still decoding replaces the one waiting (never a queue).
// window.facesymVideo[stream] keeps counts for tests and the benchmark: frames drawn, latencies [ms].
'use strict';
window.facesymVideo = window.facesymVideo || {};

function facesymToken() {
  const meta = document.querySelector('meta[name="facesym-token"]');
  return meta ? meta.content : '';
}

function facesymSocketUrl(path) {
  const url = new URL(path, window.location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  const token = facesymToken();
  if (token) url.searchParams.set('token', token);
  return url.toString();
}

function startVideo(canvas, stream, onFrame) {
  const stats = window.facesymVideo[stream] = {frames: 0, latencies: [], started: performance.now()};
  let socket = null, pending = null, busy = false;
  const context = canvas.getContext('2d');

  function draw() {
    if (busy || pending === null) return;
    const data = pending; pending = null; busy = true;
    const stamp = new DataView(data, 0, 8).getFloat64(0, true);
    createImageBitmap(new Blob([data.slice(8)], {type: 'image/jpeg'})).then((bitmap) => {
      if (canvas.width !== bitmap.width || canvas.height !== bitmap.height) {
        canvas.width = bitmap.width; canvas.height = bitmap.height;
      }
      context.drawImage(bitmap, 0, 0);
      bitmap.close();
      stats.frames += 1;
      stats.latencies.push(Date.now() - stamp * 1000);
      if (stats.latencies.length > 2000) stats.latencies.shift();
      if (onFrame) onFrame();
    }).catch(() => {}).finally(() => { busy = false; draw(); });
  }

  function open() {
    if (document.hidden || socket) return;  // nothing is encoded for a page nobody looks at
    socket = new WebSocket(facesymSocketUrl('/ws/video/' + stream));
    socket.binaryType = 'arraybuffer';
    socket.onmessage = (event) => { pending = event.data; draw(); };
    socket.onclose = () => { socket = null; setTimeout(open, 1000); };
  }

  document.addEventListener('visibilitychange', () => {
    if (document.hidden && socket) { socket.onclose = null; socket.close(); socket = null; } else open();
  });
  open();
}

function startState(path, render) {
  function open() {
    const socket = new WebSocket(facesymSocketUrl(path));
    socket.onmessage = (event) => render(JSON.parse(event.data));
    socket.onclose = () => setTimeout(open, 1000);
  }
  open();
}
