"""Ctrl-C on the demo stops the portal, the worker and beat cleanly: each child runs in its own session (the
terminal's SIGINT reaches the command only) and gets exactly one signal, the one it shuts down cleanly on."""

import signal
import subprocess
import sys
import textwrap

from flexmarket.management.commands import demo
from flexmarket.management.commands.demo import _stop


class FakeProcess:
    def __init__(self, args, **kwargs):
        self.args, self.kwargs, self.signals = args, kwargs, []

    def poll(self):
        return 0 if self.signals else None

    def send_signal(self, sig):
        self.signals.append(sig)

    def wait(self, timeout=None):
        return 0


def test_ctrl_c_sends_each_child_one_clean_signal(monkeypatch):
    started = []

    def popen(args, **kwargs):
        started.append(FakeProcess(args, **kwargs))
        return started[-1]

    def interrupted(seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr(demo.subprocess, "Popen", popen)
    monkeypatch.setattr(demo, "call_command", lambda *args, **kwargs: None)
    monkeypatch.setattr(demo.time, "sleep", interrupted)
    demo.Command()._serve("127.0.0.1:8000")
    assert len(started) == 3 and all(p.kwargs.get("start_new_session") for p in started)
    by_role = {("runserver" if "runserver" in p.args else p.args[6]): p.signals for p in started}
    assert by_role == {"worker": [signal.SIGTERM], "beat": [signal.SIGTERM], "runserver": [signal.SIGINT]}


def test_stop_gives_a_real_child_one_signal_and_waits_for_it(tmp_path):
    log = tmp_path / "signals.log"
    script = textwrap.dedent(
        f"""
        import signal, sys, time
        def handler(number, frame):
            with open({str(log)!r}, "a") as out:
                out.write(f"{{number}}\\n")
            sys.exit(0)
        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)
        print("ready", flush=True)
        time.sleep(30)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, start_new_session=True)
    assert child.stdout.readline().strip() == b"ready"
    _stop([child], timeout=10)
    assert child.returncode == 0 and log.read_text().split() == [str(int(signal.SIGINT))]
