"""The web UI under load and abuse (issue 14): concurrent jobs queue and all finish, an upload over the cap is
refused with a message, only the app's own temporary files are served (path traversal refused), and the server
binds to loopback unless told otherwise."""

from __future__ import annotations

import inspect
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("gradio")
pytest.importorskip("gradio_client")

from gradio_client import Client, handle_file  # noqa: E402
from helpers import smooth_rgb  # noqa: E402

from inrcodec import Signal, save  # noqa: E402

GOLDEN = Path(__file__).parent / "golden"
UPLOAD_CAP = 64 * 1024  # this test server's cap (the app's default is 25 MiB)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    import torch

    from app.main import launch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    demo = launch(port=_free_port(), prevent_thread_lock=True, quiet=True, max_file_size=UPLOAD_CAP)
    yield demo
    demo.close()
    torch.set_num_threads(threads)


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_loopback_by_default(server):
    from app.main import launch
    from inrcodec import cli

    assert inspect.signature(launch).parameters["host"].default == "127.0.0.1"
    assert inspect.signature(cli.ui).parameters["host"].default.default == "127.0.0.1"
    assert urllib.parse.urlparse(server.local_url).hostname in ("127.0.0.1", "localhost")


def test_four_concurrent_decodes_queue_and_finish(server, tmp_path):
    """Four clients at once on /decode (concurrency 2): all four get their image, none an error."""
    src = tmp_path / "g.inrc"
    src.write_bytes((GOLDEN / "gaussian-image.inrc").read_bytes())
    results, errors = [], []

    def one():
        try:
            out = Client(server.local_url, verbose=False).predict(handle_file(str(src)), 1.0, "", api_name="/decode")
            results.append(out)
        except Exception as exc:  # noqa: BLE001 - collected and reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    assert not errors and len(results) == 4
    for out in results:
        assert Path(out[2]).is_file()  # the decoded file each client can download


def test_four_concurrent_fits_queue_and_finish(server, tmp_path):
    """Four fits submitted at once share one CPU slot (concurrency 1): they queue and every one completes."""
    path = tmp_path / "tiny.png"
    save(Signal(smooth_rgb(12, 16, seed=1)), path)
    client = Client(server.local_url, verbose=False)
    jobs = [client.submit(handle_file(str(path)), "fourier", "bpp", 4.0, 2.0, 0, 30, api_name="/fit")
            for _ in range(4)]
    outs = [job.result(timeout=300) for job in jobs]
    assert len(outs) == 4
    for out in outs:
        assert str(out[6]).endswith(".inrc") and Path(out[6]).stat().st_size > 0


def test_upload_over_the_cap_is_refused_with_a_message(server):
    body = b"x" * (UPLOAD_CAP + 1)
    boundary = "----inrcodec"
    data = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.png\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + body + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(server.local_url.rstrip("/") + "/gradio_api/upload", data=data, method="POST",
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, text = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read()
    assert status == 413
    assert b"size" in text.lower()


@pytest.mark.parametrize("target", [
    "/etc/passwd", "../../../../etc/passwd", "..%2f..%2f..%2fetc%2fpasswd", "%2Fetc%2Fpasswd",
    str(Path(__file__).resolve()), str(GOLDEN / "golden.json"), "/proc/self/environ",
])
def test_only_the_apps_own_files_are_served(server, target):
    base = server.local_url.rstrip("/")
    status, body = _get(f"{base}/gradio_api/file={target}")
    assert status in (403, 404), f"{target}: served with status {status}"
    assert b"root:" not in body


def test_the_apps_own_outputs_are_served(server, tmp_path):
    """The counterpart of the traversal test: a file the app produced for a client can be downloaded."""
    src = tmp_path / "g.inrc"
    src.write_bytes((GOLDEN / "gaussian-image.inrc").read_bytes())
    out = Client(server.local_url, verbose=False).predict(handle_file(str(src)), 1.0, "", api_name="/decode")
    served = [v for v in out if isinstance(v, str) and Path(v).is_file()]
    assert served
    status, body = _get(f"{server.local_url.rstrip('/')}/gradio_api/file={served[0]}")
    assert status == 200 and body == Path(served[0]).read_bytes()
