"""The web UI through its API: gradio_client drives /fit, /decode and /compare on a launched app (127.0.0.1, a
free port) with tiny generated images, and the handlers' streaming, preview and cancel logic directly."""

import socket
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gradio")
pytest.importorskip("gradio_client")

from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402
from helpers import smooth_rgb  # noqa: E402
from PIL import Image  # noqa: E402

from inrcodec import Signal, decompress, load, save  # noqa: E402
from inrcodec.metrics import psnr  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One intra-op thread: on a busy 2-core machine two spinning OpenMP threads make each step many times slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def server(one_torch_thread):
    from app.main import launch

    demo = launch(host="127.0.0.1", port=free_port(), prevent_thread_lock=True, quiet=True)
    yield demo
    demo.close()


@pytest.fixture(scope="module")
def client(server):
    return Client(server.local_url, verbose=False)


@pytest.fixture(scope="module")
def tiny_png(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ui") / "tiny.png"
    save(Signal(smooth_rgb(16, 20, seed=3)), path)
    return path


@pytest.fixture(scope="module")
def fitted(client, tiny_png):
    """/fit called with the file only: every other input takes its default (model auto, 1 bpp, 20 s budget)."""
    return client.predict(handle_file(str(tiny_png)), api_name="/fit")


def _pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def _message(excinfo) -> str:
    text = str(excinfo.value)
    assert "Traceback" not in text and "/tmp/" not in text, text  # one readable line, no server paths
    return text


def test_api_names(client):
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/fit", "/decode", "/compare"} <= names


def test_fit_with_only_the_file(fitted, tiny_png):
    preview, status, plot, slider, metrics_md, metrics, inrc_path, decoded_path = fitted
    original = load(tiny_png)
    data = Path(inrc_path).read_bytes()
    decoded = load(decoded_path)
    # The numbers shown are those of the file handed out: its size, and the PSNR of its decoded output.
    assert metrics["bytes"] == len(data)
    assert metrics["bpp"] == pytest.approx(8 * len(data) / (16 * 20))
    assert metrics["psnr"] == pytest.approx(psnr(original.data, decoded.data), abs=1e-9)
    assert metrics["target"] == {"bpp": 1.0}
    assert 0 < metrics["ms_ssim"] <= 1 and metrics["encode_seconds"] > 0
    assert decoded.data.shape == original.data.shape and decoded.dtype == original.dtype
    np.testing.assert_array_equal(decompress(data).data, decoded.data)
    # Before/after slider: exactly the input and the decoded pixels (pictures are sent losslessly).
    before, after = slider
    np.testing.assert_array_equal(_pixels(before), original.data)
    np.testing.assert_array_equal(_pixels(after), decoded.data)
    assert f"{metrics['bytes']:,} bytes" in status and 'aria-valuenow="100"' in status and "PSNR" in metrics_md
    assert Path(inrc_path).name == "tiny.inrc" and Path(decoded_path).name == "tiny.decoded.png"


def test_decode_info_and_render_at_another_size(client, fitted):
    inrc_path = fitted[6]
    size = Path(inrc_path).stat().st_size
    info_md, info, picture, out_path, status = client.predict(handle_file(inrc_path), 2.0, "", api_name="/decode")
    assert info["bytes"] == size and info["shape"] == [16, 20, 3] and info["model"] == fitted[5]["model"]
    assert info["bpp"] == pytest.approx(8 * size / (16 * 20))
    out = load(out_path)
    assert out.data.shape == (32, 40, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(_pixels(picture), out.data)
    # An explicit size (width first, as on the command line) wins over the scale.
    _, _, _, out_path, _ = client.predict(handle_file(inrc_path), 2.0, "25x10", api_name="/decode")
    assert load(out_path).data.shape == (10, 25, 3)
    # At the stored size, the render is the Fit tab's decoded file.
    _, _, _, out_path, _ = client.predict(handle_file(inrc_path), 1.0, "", api_name="/decode")
    np.testing.assert_array_equal(load(out_path).data, load(fitted[7]).data)


def test_bad_inputs_give_readable_messages(client, tmp_path):
    fake = tmp_path / "notes.png"
    fake.write_text("this is not an image\n")
    with pytest.raises(AppError) as err:
        client.predict(handle_file(str(fake)), api_name="/fit")
    assert "notes.png: not a PNG image" in _message(err)

    garbage = tmp_path / "broken.inrc"
    garbage.write_bytes(b"INRC" + bytes(range(256)) * 4)
    with pytest.raises(AppError) as err:
        client.predict(handle_file(str(garbage)), api_name="/decode")
    assert "broken.inrc" in _message(err)

    with pytest.raises(AppError) as err:
        client.predict(handle_file(str(garbage)), 1.0, "ten by five", api_name="/decode")
    assert "broken.inrc" in _message(err)  # the file is checked before the size


def test_bad_settings_give_readable_messages(client, tiny_png, fitted):
    with pytest.raises(AppError) as err:
        client.predict(handle_file(str(tiny_png)), "auto", "bpp", -1, api_name="/fit")
    assert "target bpp must be in (0, 64]" in _message(err)
    with pytest.raises(AppError) as err:
        client.predict(handle_file(fitted[6]), 1.0, "ten by five", api_name="/decode")
    assert "expected NxN (width first)" in _message(err)


def test_upload_cap(client, tiny_png, monkeypatch):
    import app.handlers as h

    monkeypatch.setattr(h, "MAX_UPLOAD_BYTES", tiny_png.stat().st_size - 1)  # the server runs in this process
    with pytest.raises(AppError) as err:
        client.predict(handle_file(str(tiny_png)), api_name="/fit")
    assert "tiny.png" in _message(err) and "upload cap" in _message(err)


def test_queue_and_limits_are_configured(server):
    import app.handlers as h

    assert server.max_file_size == h.MAX_UPLOAD_BYTES
    fns = {fn.api_name: fn for fn in server.fns.values() if fn.api_name}
    assert fns["fit"].concurrency_limit == 1 and fns["compare"].concurrency_limit == 1
    assert fns["fit"].concurrency_id == fns["compare"].concurrency_id  # one CPU-heavy job at a time, in all
    assert server._queue.max_size is not None


def test_compare(client, tmp_path):
    path = tmp_path / "small.png"
    img = smooth_rgb(48, 64, seed=5)
    save(Signal(img), path)
    plot, table, result, original, ours, theirs, caption = client.predict(
        handle_file(str(path)), ["fourier"], ["jpeg", "webp"], "2, 4, 8", 5, 30, api_name="/compare")
    curves = result["curves"]
    assert len(curves["inrcodec-fourier"]) == 3
    assert "webp" in curves and ("jpeg" in curves or "jpeg" in result["skipped"])
    assert "webp" in result["bd_rate"]["inrcodec-fourier"]
    assert "| inrcodec-fourier |" in table and "BD-rate fourier" in table
    assert Image.open(plot).format == "PNG" and min(Image.open(plot).size) > 200
    np.testing.assert_array_equal(_pixels(original), img)
    side = result["side_by_side"]
    ours_bpp = side["inrcodec"]["bpp"]
    best = side["best_classical"]
    # The classical picture is the best of the codecs that landed within 10 % of inrcodec's size.
    landed = {k: v for k, v in side["classical"].items() if isinstance(v, dict)}
    assert best in landed and abs(landed[best]["bpp"] - ours_bpp) <= 0.1 * ours_bpp
    assert landed[best]["psnr"] == max(v["psnr"] for v in landed.values())
    assert best in caption and _pixels(theirs).shape == img.shape and _pixels(ours).shape == img.shape


# -- the streaming logic, without a server ---------------------------------------------------------------------


def test_fit_stream_shows_previews_when_the_codec_offers_renders(tmp_path, monkeypatch):
    import app.handlers as h

    path = tmp_path / "p.png"
    save(Signal(smooth_rgb(12, 14)), path)
    real = h.compress
    marker = Signal(np.full((12, 14, 3), 200, np.uint8))

    def compress_with_preview(signal, *, progress=None, preview=None, **kw):
        for step in (1, 2):
            preview(step, lambda: marker)
            progress("fit", step, step / 10, 10.0 + step, 0.1 * step)
        return real(signal, progress=progress, **kw)

    monkeypatch.setattr(h, "compress", compress_with_preview)
    monkeypatch.setattr(h, "PREVIEW_EVERY", 0.0)
    items = list(h.fit_stream(str(path), steps=5, time_budget=5))
    progress = [i for i in items if isinstance(i, h.FitProgress)]
    assert h.codec_has_preview()
    assert all(p.preview is not None and (p.preview == 200).all() for p in progress)
    assert [p for _, p in progress[-1].history][:2] == [11.0, 12.0]  # the live PSNR history keeps every report
    assert len(progress[-1].history) > 2  # ... and the real fit's reports after those
    assert isinstance(items[-1], h.FitOutcome)


def test_closing_the_stream_stops_the_fit(tmp_path):
    import app.handlers as h

    path = tmp_path / "c.png"
    save(Signal(smooth_rgb(16, 16)), path)
    before = {t.ident for t in threading.enumerate()}
    stream = h.fit_stream(str(path), steps=10**7, time_budget=600)
    first = next(stream)
    assert isinstance(first, h.FitProgress)
    workers = [t for t in threading.enumerate() if t.name == "inrcodec-ui-fit" and t.ident not in before]
    assert len(workers) == 1
    stream.close()  # what Gradio does when the page goes away
    workers[0].join(timeout=60)  # it stops at its next progress report, not after the 600 s budget
    assert not workers[0].is_alive()
