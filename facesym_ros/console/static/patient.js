// The patient's screen: their picture, mirrored as a mirror is (a console setting), the instruction in large
// type and the countdown. No score and no id ever reach this page.
'use strict';
const camera = document.getElementById('camera');
const box = document.getElementById('prompt');
startVideo(camera, 'camera');
startState('/ws/patient', (state) => {
  camera.classList.toggle('mirror', !!state.mirror);
  box.className = 'phase-' + state.phase;
  document.getElementById('progress').textContent =
    state.number ? 'Task ' + state.number + ' of ' + state.count : '';
  let instruction = state.instruction;
  if (state.phase === 'idle') instruction = 'Welcome. The assessment will start soon.';
  document.getElementById('instruction').textContent = instruction;
  document.getElementById('countdown').textContent = state.countdown;
});
