"""Ctrl-C and SIGTERM while rclpy takes messages: counted by StopSignals, acted on between spins, never raised
inside rclpy's C++ code (where pybind11 turns KeyboardInterrupt into a RuntimeError, and a session crashed
without its report: seen once in a full test run)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

# The child: a real node floods itself with large nested messages (their conversion to Python takes the longest,
# which is where a raising handler broke) while signals come at staggered moments. It spins as the session does.
CHILD = r'''
import json, os, signal, sys, threading, time
import rclpy
from geometry_msgs.msg import Point
from rclpy.executors import SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions
from visualization_msgs.msg import Marker, MarkerArray
from facesym_ros.ros.signals import StopSignals

count, which = int(sys.argv[1]), getattr(signal, sys.argv[2])
context = rclpy.Context()
rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO)
node = rclpy.create_node('signal_flood', context=context)
publisher = node.create_publisher(MarkerArray, 'flood', 10)
taken = []
node.create_subscription(MarkerArray, 'flood', lambda msg: taken.append(len(msg.markers)), 10)
executor = SingleThreadedExecutor(context=context)
executor.add_node(node)
message = MarkerArray(markers=[Marker(points=[Point(x=float(i)) for i in range(68)]) for _ in range(60)])
done = threading.Event()
threading.Thread(target=lambda: [publisher.publish(message) for _ in iter(done.is_set, True)], daemon=True).start()
signals = StopSignals().install()
acted, errors = 0, []
for number in range(count):
    threading.Timer(0.002 + (number % 17) * 0.0013, os.kill, (os.getpid(), which)).start()
    began = time.monotonic()
    try:
        while time.monotonic() - began < 2.0:
            if signals.take():
                acted += 1
                break
            executor.spin_once(timeout_sec=0.02)
    except BaseException as error:  # anything raised while spinning is the fault this guards against
        errors.append(f'{type(error).__name__}: {str(error)[:80]}')
    time.sleep(0.03)  # the signal of this round has come
done.set()
signals.restore()
print(json.dumps({'acted': acted, 'counted': signals.count, 'errors': errors, 'taken': len(taken),
                  'restored': signal.getsignal(which) is signal.default_int_handler if which == signal.SIGINT
                  else signal.getsignal(which) == signal.SIG_DFL}))
'''


@pytest.mark.parametrize('which', ['SIGINT', 'SIGTERM'])
def test_signals_while_messages_are_taken_are_counted_and_never_raised_inside_rclpy(which):
    count = 120
    child = subprocess.run([sys.executable, '-c', CHILD, str(count), which], check=False, capture_output=True,
                           text=True, timeout=300)
    assert child.returncode == 0, child.stderr[-3000:]
    outcome = json.loads(child.stdout.splitlines()[-1])
    assert outcome['errors'] == [], outcome
    assert outcome['counted'] == count and outcome['acted'] == count, outcome  # each one acted on, once
    assert outcome['taken'] > 0, outcome  # messages were being taken while the signals came
    assert outcome['restored'], outcome


def test_stop_signals_off_the_main_thread_change_no_handler():
    import threading

    from facesym_ros.ros.signals import StopSignals

    before = signal.getsignal(signal.SIGINT)
    installed = []
    thread = threading.Thread(target=lambda: installed.append(StopSignals().install()))
    thread.start()
    thread.join()
    assert signal.getsignal(signal.SIGINT) is before
    installed[0].restore()
    assert signal.getsignal(signal.SIGINT) is before
