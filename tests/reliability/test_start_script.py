"""scripts/start.py waits for Plone with a deadline: a slow first page is waiting,
not failure."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from instance import load_start

import threading


class SlowFirstPage(BaseHTTPRequestHandler):
    """The first request takes longer than start.py's per-try timeout (a cold
    Plone on a busy machine); later ones answer at once."""

    answered = 0
    first_delay = threading.Event()

    def do_GET(self):
        type(self).answered += 1
        if type(self).answered == 1:
            self.first_delay.wait(4)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


class RunningProcess:
    returncode = None

    def poll(self):
        return None


def test_wait_for_plone_survives_a_slow_first_page(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowFirstPage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        start = load_start(tmp_path / "instance")
        start.TRY_SECONDS = 1  # the first page takes longer than one try
        url = f"http://127.0.0.1:{server.server_address[1]}/Plone"
        start.wait_for_plone(url, RunningProcess())
        assert SlowFirstPage.answered >= 2
    finally:
        SlowFirstPage.first_delay.set()
        server.shutdown()
        server.server_close()
