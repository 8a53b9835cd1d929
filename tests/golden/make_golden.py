"""The golden corpus: small ``.inrc`` files of every model (and a file of parts) that must keep decoding the same.

For each file ``NAME.inrc`` (written once from ``inrcodec.fuzzing.SEED_MAKERS``, then never rewritten unless
``--force``): ``NAME.npy`` holds its decoded output, and ``golden.json`` the SHA-256 of the file and of what it
*parses* to (``parse_digest``: the integer symbols and exactly dequantised parameters, before any float rendering).
``tests/test_golden.py`` holds today's decoder to both. A layout added on another branch registers a seed maker
(one line) and runs this script: its golden file then guards it too.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python tests/golden/make_golden.py [--force NAME ...]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))


def _h(h, arr) -> None:
    a = np.ascontiguousarray(arr)
    h.update(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())


def parse_digest(data: bytes) -> str:
    """SHA-256 of what a file parses to, on IEEE-exact values only: the header, every entropy-decoded symbol
    stream and the parameters dequantised from them (integers times stored float32 steps or powers of two;
    Gaussians: lattice indices, refinement bits, shape and colour symbols, and their exact dequantisation).
    Buffers regenerated with libm (the Fourier frequencies) and renders are left out: those are checked against
    the stored output within 0.5 LSB instead."""
    import torch

    from inrcodec.codec import load_representation
    from inrcodec.container import read_container
    from inrcodec.entropy import decode_ints
    from inrcodec.parts import PART_PREFIX, part_count

    c = read_container(data)
    h = hashlib.sha256()
    h.update(json.dumps({"signal": c.signal, "model": c.model, "config": c.config}, sort_keys=True).encode())
    if c.model in ("mcvideo", "dataset-tile"):  # a part of a layout: its inner files and symbol streams
        for name in sorted(c.sections):
            blob = c.sections[name]
            h.update(name.encode())
            if name in ("intra", "field"):
                h.update(parse_digest(blob).encode())
            elif name == "motion":
                from inrcodec.models import mcorder, mcvideo

                n, hh, ww = c.signal["shape"][:3]
                block = c.config["block"]
                if c.config.get("structure"):  # hierarchical B-frames: forward and backward block fields
                    mo = mcorder.decode_motion(blob, n, c.config["mini_gop"], block, c.config["b_block"], hh, ww)
                    _h(h, mo.anchors)
                    _h(h, mo.forward)
                    _h(h, mo.backward)
                    continue
                fields = n if c.config["bidirectional"] and n > 1 else n - 1
                _h(h, mcvideo.decode_motion(blob, (fields, -(-hh // block), -(-ww // block), 2),
                                            c.config.get("motion", "temporal")))
            else:  # lossless values, non-finite positions: exact bytes
                h.update(blob)
        return h.hexdigest()
    if c.model == "bounded":  # the predictive coder: integer symbols and float64 basic operations only
        from inrcodec.bounded.field import decode_predictor_only

        _h(h, decode_predictor_only(c).data)
        return h.hexdigest()
    if any(n.startswith(PART_PREFIX) for n in c.sections):
        for i in range(part_count(c)):
            h.update(parse_digest(c.sections[f"{PART_PREFIX}{i}"]).encode())
        return h.hexdigest()
    if c.model in ("gaussian", "gaussian+dct"):
        from inrcodec.models import gaussian_codec as gc

        hh, ww, nc = c.signal["shape"]
        q, layer, steps, counts = gc.decode_section(c.sections["gaussians"], hh, ww, nc)
        for arr in (q.index, q.refine, q.shape, q.color, layer, steps.codes(), np.array(counts)):
            _h(h, arr)
        for arr in gc.dequantize(q, steps, hh, ww):
            _h(h, arr)
        if c.sections.get("dct"):  # gaussian+dct's residual: its integer symbols and steps
            from inrcodec.models import image_dct

            q, units, _, tx16, filters, cfl = image_dct.decode_parts(c.sections["dct"], hh, ww, nc)
            _h(h, q.astype(np.int32))  # the values, whatever integer type the decoder holds them in
            _h(h, units)
            if tx16 is not None:  # formats 4/5's 16x16 group flags (older files have none: their digests unchanged)
                _h(h, tx16)
            if cfl is not None:  # format 7's chroma-from-luma alphas (session 26; older files have none)
                _h(h, cfl)
            if filters is not None:  # formats 3/5's restoration filters (files of formats 1 and 2 hash as before)
                head = {k: filters[k] for k in ("shape", "shift", "n_act", "n_dir", "thresholds")}
                if "cross" in filters:  # format 6's cross-channel offsets (formats 3/5 hash as before)
                    head["cross"] = [int(n) for n in filters["cross"]]
                h.update(json.dumps(head).encode())
                for coefs, mapping in zip(filters["coefs"], filters["maps"]):
                    _h(h, np.asarray(coefs, np.int64))
                    _h(h, np.asarray(mapping, np.int64))
    else:
        _, net = load_representation(data)
        for name, p in net.named_parameters():
            h.update(name.encode())
            _h(h, p.detach().to(torch.float32).numpy())
    if "residual" in c.sections:
        blob = c.sections["residual"]
        h.update(blob[:8])
        _h(h, decode_ints(blob[8:], int(np.prod(c.signal["shape"]))))
    return h.hexdigest()


def decoded_output(data: bytes) -> np.ndarray:
    """The decoded array a user gets (``decompress``); for a file of parts, the parts' outputs concatenated."""
    from inrcodec.codec import decompress
    from inrcodec.container import read_container
    from inrcodec.parts import PART_PREFIX, part_count

    c = read_container(data)
    if c.model == "dataset":  # every variable, coordinates included, in file order
        ds = decompress(data)
        return np.concatenate([np.asarray(ds[k].values, np.float64).ravel() for k in ds.variables])
    if c.model in ("video", "image-tiles"):  # what the user gets: frames, or the tiles blended into one image
        return decompress(data).data
    if any(n.startswith(PART_PREFIX) for n in c.sections):
        return np.concatenate([decoded_output(c.sections[f"{PART_PREFIX}{i}"]).astype(np.float64).ravel()
                               for i in range(part_count(c))])
    return decompress(data).data


def main() -> None:
    import torch

    from inrcodec.fuzzing import SEED_MAKERS

    torch.set_num_threads(1)
    ap = argparse.ArgumentParser()
    ap.add_argument("--force", nargs="*", default=[], help="rewrite these .inrc files (breaks old expectations)")
    a = ap.parse_args()
    index_path = HERE / "golden.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {}
    for name, make in SEED_MAKERS.items():
        path = HERE / f"{name}.inrc"
        if not path.exists() or name in a.force:
            path.write_bytes(make())
        data = path.read_bytes()
        np.save(HERE / f"{name}.npy", decoded_output(data), allow_pickle=False)
        index[name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                       "parse_sha256": parse_digest(data)}
        print(name, index[name])
    index_path.write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
