"""Fuzzing in CI (hypothesis): hostile files never make the decoder raise anything but FormatError / InputError.

Cases are re-sealed mutations (CRCs recomputed, see ``inrcodec.fuzzing``) of the golden corpus (every model, a
file of parts, video GOPs of both kinds, a dataset, the error-bounded coder with NaN/Inf), plus direct attacks on
the entropy decoder, the model-state codec, the Gaussian section decoder and the part table, and the campaign's
findings as regression tests. About 4 500 cases, a minute or two; the >= 100 000-case campaign with timings and memory
is ``benchmarks/fuzz_campaign.py``. A new layout plugs in with one ``register_seed`` line (and its golden file).
Timing targets live in the campaign; here a hang guard only turns a case still running after 60 s into a failure.
"""

from __future__ import annotations

import random
import signal
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inrcodec.errors import FormatError, InputError
from inrcodec.fuzzing import CLEAN, MUTATORS, SEED_MAKERS, mutate, reseal, run_case, unseal

GOLDEN = Path(__file__).parent / "golden"


def FUZZ(n: int) -> settings:
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@lru_cache(maxsize=None)
def seeds() -> dict[str, bytes]:
    out = {p.stem: p.read_bytes() for p in sorted(GOLDEN.glob("*.inrc"))}
    for name, make in SEED_MAKERS.items():
        out.setdefault(name, make())
    return out


class _Hang(Exception):
    pass


def _guarded(data: bytes):
    def alarm(signum, frame):
        raise _Hang()

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(60)
    try:
        return run_case(data)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _assert_clean(data: bytes, how: str) -> str:
    outcome, _, msg = _guarded(data)
    assert outcome in CLEAN, f"{how}: {msg}"
    if outcome != "ok":
        assert msg and "\n" not in msg, f"{how}: error message must be one line: {msg!r}"
    return outcome


def test_every_seed_decodes():
    assert set(SEED_MAKERS) <= set(seeds())
    for name, data in seeds().items():
        assert run_case(data)[0] == "ok", name


def test_reseal_is_faithful_and_mutations_stay_sealed():
    """unseal/reseal round-trips a file byte for byte, so a mutated file differs only where the mutator said."""
    for data in seeds().values():
        v, h, s = unseal(data)
        assert reseal(h, s, v) == data
    rng = random.Random(0)
    data = seeds()["fourier-image"]
    sealed = 0
    for name in MUTATORS:
        if name in ("raw_bytes", "version_game", "table_lie"):
            continue
        for _ in range(5):
            try:
                unseal(MUTATORS[name](rng, data, list(seeds().values())))
                sealed += 1
            except Exception:  # noqa: BLE001 - a mutated header may not even be a dict any more
                pass
    assert sealed >= 20


@FUZZ(1800)
@given(seed=st.integers(0, 2**32 - 1), which=st.integers(0, 10**6))
def test_resealed_mutations_fail_cleanly(seed, which):
    names = sorted(seeds())
    rng = random.Random(seed)
    data, how = mutate(rng, seeds()[names[which % len(names)]], list(seeds().values()))
    _assert_clean(data, f"{names[which % len(names)]} / {how} / seed {seed}")


@pytest.mark.parametrize("mutator", sorted(MUTATORS))
def test_each_mutator_on_each_seed(mutator):
    """Every mutator on every seed, 6 times each: no mutator/seed pair goes untested by chance."""
    rng = random.Random(mutator)
    donors = list(seeds().values())
    for name, data in seeds().items():
        for _ in range(6):
            bad = MUTATORS[mutator](rng, data, donors)
            outcome = _assert_clean(bad, f"{name} / {mutator}")
            if mutator == "raw_bytes" and bad != data:  # CRCs not recomputed: the container must notice
                assert outcome == "FormatError"


def test_duplicate_and_reordered_sections():
    for name, data in seeds().items():
        v, h, s = unseal(data)
        if len(s) >= 2:
            with pytest.raises(FormatError):
                run_case_raise(reseal(h, s + [s[0]], v))
            assert _assert_clean(reseal(h, list(reversed(s)), v), name) in CLEAN


def run_case_raise(data: bytes) -> None:
    from inrcodec.fuzzing import decode_target

    decode_target(data)


@pytest.mark.parametrize("version", [0, 2, 255])
def test_version_games(version):
    v, h, s = unseal(seeds()["gaussian-image"])
    with pytest.raises(FormatError, match="version"):
        run_case_raise(reseal(h, s, version))


# -- section decoders directly ----------------------------------------------------------------------------
@FUZZ(400)
@given(blob=st.binary(max_size=64), count=st.integers(0, 5000))
def test_entropy_decoder_on_garbage(blob, count):
    from inrcodec.entropy import decode_ints

    try:
        out = decode_ints(blob, count)
        assert out.shape == (count,) and out.dtype == np.int32
    except FormatError:
        pass


@FUZZ(400)
@given(data=st.data())
def test_entropy_decoder_on_damaged_blobs(data):
    """Real blobs of every model, damaged: decode a FormatError or exactly ``count`` int32 symbols."""
    from inrcodec.entropy import MODEL_NAMES, decode_ints, encode_ints

    model = data.draw(st.sampled_from(sorted(MODEL_NAMES)))
    n = data.draw(st.integers(1, 300))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    sym = np.rint(rng.laplace(0, data.draw(st.sampled_from([0.5, 3.0, 200.0])), n)).astype(np.int64)
    try:
        blob = bytearray(encode_ints(sym, model))
    except InputError:  # e.g. "const" for non-constant data
        return
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(blob) - 1))
        blob[i] = data.draw(st.integers(0, 255))
    count = data.draw(st.sampled_from([n, n - 1, n + 1, 0, 10 * n]))
    try:
        out = decode_ints(bytes(blob), max(count, 0))
        assert out.shape == (max(count, 0),)
    except FormatError:
        pass


@FUZZ(300)
@given(blob=st.binary(max_size=200), shapes=st.lists(st.lists(st.integers(0, 40), min_size=0, max_size=3),
                                                      min_size=1, max_size=4))
def test_state_decoder_on_garbage(blob, shapes):
    from inrcodec.quant import decode_state

    try:
        decode_state(blob, {f"t{i}": tuple(s) for i, s in enumerate(shapes)})
    except FormatError:
        pass


@FUZZ(300)
@given(blob=st.binary(max_size=300), hw=st.tuples(st.integers(1, 40), st.integers(1, 40)),
       channels=st.integers(1, 4), layers=st.one_of(st.none(), st.integers(0, 20)))
def test_gaussian_section_decoder_on_garbage(blob, hw, channels, layers):
    from inrcodec.models import gaussian_codec as gc

    try:
        gc.decode_section(blob, hw[0], hw[1], channels, max_layers=layers)
    except FormatError:
        pass


@FUZZ(200)
@given(names=st.lists(st.text(alphabet="part:0123456789-x ", max_size=8), max_size=6))
def test_part_table_names(names):
    from inrcodec.container import Container
    from inrcodec.parts import part_count

    try:
        n = part_count(Container({}, "video", {}, {k: b"" for k in names}))
        assert n == sum(k.startswith("part:") for k in set(names))
    except FormatError:
        pass


# -- layouts and coders added after the first corpus: video GOPs, datasets, the error-bounded coder ----------------
LAYOUT_SEEDS = ("video-mcvideo", "video-mcvideo-residual", "video-mcvideo-dct2", "video-mcvideo-framesteps",
                "video-fourier", "dataset",
                "bounded-nonfinite", "fourier-bounded-nonfinite", "image-tiles")


@FUZZ(300)
@given(seed=st.integers(0, 2**32 - 1), which=st.sampled_from(LAYOUT_SEEDS))
def test_layout_seeds_resealed_mutations_fail_cleanly(seed, which):
    rng = random.Random(seed)
    data, how = mutate(rng, seeds()[which], list(seeds().values()))
    _assert_clean(data, f"{which} / {how} / seed {seed}")


def _inner(data: bytes, index: int = 0):
    from inrcodec.parts import part_section

    v, h, s = unseal(data)
    s = dict(s)
    return v, h, s, part_section(index)


def test_mcvideo_intra_bomb_is_refused_before_rendering():
    """A GOP whose intra frame claims a larger picture than the GOP: refused from the header, not rendered."""
    from inrcodec.codec import decompress

    v, h, s, name = _inner(seeds()["video-mcvideo"])
    gv, gh, gs = unseal(s[name])
    iv, ih, isec = unseal(dict(gs)["intra"])
    ih = json_copy(ih)
    ih["signal"]["shape"] = [4000, 4000, 3]
    gs = [(n, reseal(ih, isec, iv) if n == "intra" else p) for n, p in gs]
    s[name] = reseal(gh, gs, gv)
    bomb = reseal(h, list(s.items()), v)
    with pytest.raises(FormatError, match="another size"):
        decompress(bomb)


def test_mcvideo_float_block_is_a_format_error():
    """Campaign finding (seed 14, cases 71093/75016): a GOP config with block 16.0 passed ``block in (8, 16, ...)``
    and reached the motion decoder as a float count (TypeError)."""
    from inrcodec.codec import decompress

    v, h, s, name = _inner(seeds()["video-mcvideo"])
    gv, gh, gs = unseal(s[name])
    gh = json_copy(gh)
    gh["config"]["block"] = float(gh["config"]["block"])
    s[name] = reseal(gh, gs, gv)
    with pytest.raises(FormatError, match="mcvideo config out of range"):
        decompress(reseal(h, list(s.items()), v))


def test_layout_parts_inherit_the_callers_pixel_cap():
    """decompress(max_pixels=N) on a file of parts applies N to every GOP / tile."""
    from inrcodec.codec import decompress

    for name in ("video-fourier", "video-mcvideo", "video-mcvideo-dct2", "dataset"):  # (GOPs decode in threads)
        decompress(seeds()[name], max_pixels=1 << 16)  # the seeds fit
        with pytest.raises(FormatError, match="more than the cap of 20"):
            decompress(seeds()[name], max_pixels=20)


def test_dataset_garbage_zlib_is_a_format_error():
    from inrcodec.codec import decompress

    v, h, s = unseal(seeds()["dataset"])
    lossless = [n for n, _ in s if n.startswith("var:")]
    assert lossless, "the dataset seed stores a small variable losslessly"
    s = [(n, b"\x78\x9c" + bytes(range(40)) if n == lossless[0] else p) for n, p in s]
    with pytest.raises(FormatError, match="inflate"):
        decompress(reseal(h, s, v))


def json_copy(obj):
    import json

    return json.loads(json.dumps(obj))


def test_dataset_variable_section_of_the_wrong_type_is_a_format_error():
    """Found by the campaign (case 32313): a lossless variable's section name replaced by a list."""
    from inrcodec.codec import decompress

    v, h, s = unseal(seeds()["dataset"])
    h = json_copy(h)
    spec = next(x for x in h["config"]["variables"] if x["role"] != "field")
    spec["section"] = [spec["section"]]
    with pytest.raises(FormatError, match="malformed variable"):
        decompress(reseal(h, s, v))


def test_gaussian_work_cap_refuses_the_worst_file_unless_trusted():
    """The slowest Gaussian file the caps accept on 256 x 256 has 1024 whole-image Gaussians; one more is refused
    before rendering, and decodes when the caller lifts the caps (max_pixels=0)."""
    from inrcodec.codec import decompress
    from inrcodec.fuzzing import gaussian_costly_file

    seed = seeds()["gaussian-image"]
    assert decompress(gaussian_costly_file(seed, 256, 256, 1024)).data.shape == (256, 256, 3)
    over = gaussian_costly_file(seed, 256, 256, 1025)
    with pytest.raises(FormatError, match="rasterise"):
        decompress(over)
    assert decompress(over, max_pixels=0).data.shape == (256, 256, 3)
