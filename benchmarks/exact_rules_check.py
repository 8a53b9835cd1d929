"""Do the Gaussian codec's IEEE-exact step rules decode format-version-1 files exactly as the libm/BLAS rules they
replace? Compares, on this machine, the old expressions (np.power, np.log2, np.sum, BLAS ``@``) with the new
ones (``inrcodec.models.gaussian_codec``) on:

* every integer step code the format can produce (code_to_step);
* 10^7 random Gaussians with realistic quantised log-sizes and colours (colour, shape and refinement rules);
* every double within +-2000 ulp of each refinement threshold (where a rounding decision could flip);
* Gaussian files of Kodak crops (192x192, ~1 bpp): quantised symbols, parameters and renders.

The old module is the Gaussian bitstream module as format version 1 was first written (libm/BLAS rules), read
from git history (commit ``V1_COMMIT``) rather than kept as a second copy in the tree.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/exact_rules_check.py --out benchmarks/results/exact_rules.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inrcodec.models import gaussian_codec as gc  # noqa: E402


V1_COMMIT = "698aec3"  # the last commit with the libm/BLAS rules


def load_v1_module():
    """``inrcodec/models/gaussian_codec.py`` as of ``V1_COMMIT``, imported from git history (needs a git checkout)."""
    import importlib.util
    import subprocess

    try:
        src = subprocess.run(["git", "-C", str(ROOT), "show", f"{V1_COMMIT}:inrcodec/models/gaussian_codec.py"],
                             check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise SystemExit(f"exact_rules_check needs the git history (commit {V1_COMMIT}): {e}")
    src = src.replace("from ..", "from inrcodec.")  # its relative imports, from outside the package
    spec = importlib.util.spec_from_loader("gc_v1_libm", loader=None)
    old = importlib.util.module_from_spec(spec)
    sys.modules["gc_v1_libm"] = old
    exec(compile(src, f"{V1_COMMIT}:gaussian_codec.py", "exec"), old.__dict__)
    return old


# -- the format-version-1 rules as first written (libm pow/log2, numpy sum, BLAS matmul) ------------------------
def old_code_to_step(code):
    return np.power(2.0, np.asarray(code, dtype=np.float64) / 8)


def old_color_multiplier(v0):
    return gc._eighths(-1.0 * (v0 - 2.0 * math.log(3.0)) / (2.0 * math.log(2.0)))


def old_shape_multiplier(v0, colors):
    norm = np.sqrt(np.sum(colors**2, axis=1)) + 1e-6
    return gc._eighths(-1.0 * (v0 - 2.0 * math.log(3.0)) / (2.0 * math.log(2.0)) + 1.0 * np.log2(gc.C_REF / norm))


def old_refine_bits(colors, refine):
    norm = np.sqrt(np.sum(colors**2, axis=1)) + 1e-6
    return np.clip(refine + np.floor(1.0 * np.log2(norm / gc.C_REF) + 0.5), 0, gc.MAX_REFINE).astype(np.int64)


def real_files(n_images: int) -> list[dict]:
    """Gaussian files of Kodak crops, parsed by the old rules and the new: symbols, parameters and renders."""
    import torch

    from inrcodec.codec import compress, load_representation
    from inrcodec.container import read_container
    from inrcodec.kernels import rasterize_gaussians
    from inrcodec.signals import load

    old = load_v1_module()
    kodak = ROOT.parent / "shared" / "data" / "kodak"
    out = []
    for path in sorted(kodak.glob("kodim*.png"))[:n_images]:
        sig = load(path)
        sig.data = np.ascontiguousarray(sig.data[100:292, 200:392])
        torch.manual_seed(0)
        data = compress(sig, "gaussian", steps=60, bpp=1.0).data
        c = read_container(data)
        h, w, nc = c.signal["shape"]
        # the old module reads form 1 only: the same Gaussians re-coded in form 1 (the rules compared are the same)
        q, layer_of, steps, counts = gc.decode_section(c.sections["gaussians"], h, w, nc)
        form1 = gc.encode_section(q, layer_of, len(counts), steps, form=gc.FORM_LEGACY)
        qa, _, sa, _ = old.decode_section(form1, h, w, nc)
        qb, _, sb, _ = gc.decode_section(c.sections["gaussians"], h, w, nc)
        same = all(np.array_equal(getattr(qa, k), getattr(qb, k)) for k in ("index", "refine", "shape", "color"))
        da, db = old.dequantize(qa, sa, h, w), gc.dequantize(qb, sb, h, w)
        _, net = load_representation(data)
        with torch.no_grad():
            new_img = net.render().numpy().astype(np.float64) * 255
            chol = gc.logcov_to_chol(torch.from_numpy(da[1])).to(torch.float32)
            old_img = rasterize_gaussians(torch.from_numpy(da[0]).float(), chol, torch.from_numpy(da[2]).float(),
                                          h, w).numpy().astype(np.float64) * 255
        out.append({"image": path.name, "gaussians": int(qa.index.size), "bytes": len(data),
                    "symbols_identical": bool(same),
                    "positions_and_shapes_identical": bool(np.array_equal(da[0], db[0]) and np.array_equal(da[1], db[1])),
                    "colour_max_abs_difference": float(np.max(np.abs(da[2] - db[2]))),
                    "render_max_abs_difference_lsb": float(np.max(np.abs(old_img - new_img))),
                    "uint8_output_identical": bool(np.array_equal(np.clip(np.rint(old_img), 0, 255),
                                                                  np.clip(np.rint(new_img), 0, 255)))})
        print(out[-1], flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=10_000_000)
    ap.add_argument("--images", type=int, default=6, help="Kodak crops encoded and parsed both ways")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    t0 = time.time()
    res: dict = {"machine": f"{os.uname().machine}, numpy {np.__version__}", "load_average": os.getloadavg()}

    codes = np.arange(-128 - 24, 127 + 33)
    res["step_codes_checked"] = int(codes.size)
    res["step_code_mismatches"] = int(np.sum(old_code_to_step(codes) != gc.code_to_step(codes)))

    rng = np.random.default_rng(14)
    mism = {"color_multiplier": 0, "shape_multiplier": 0, "refine_bits": 0, "basis_product_bits": 0}
    done = 0
    basis = gc.color_basis(3)
    while done < a.samples:
        n = min(1_000_000, a.samples - done)
        code = int(rng.integers(-40, 8))
        qv0 = rng.integers(-60, 60, n)
        v0 = qv0 * gc.code_to_step(code)
        coded = rng.integers(-400, 400, (n, 3)) * gc.code_to_step(rng.integers(-60, 0, (n, 1)))
        colors_old = coded @ basis
        colors_new = gc.basis_product(coded, basis)
        mism["basis_product_bits"] += int(np.sum(colors_old != colors_new))
        mism["color_multiplier"] += int(np.sum(old_color_multiplier(v0) != gc.color_multiplier(v0)))
        mism["shape_multiplier"] += int(np.sum(old_shape_multiplier(v0, colors_new) != gc.shape_multiplier(v0,
                                                                                                        colors_new)))
        mism["refine_bits"] += int(np.sum(old_refine_bits(colors_new, 2) != gc.refine_bits(colors_new, 2)))
        done += n
    res["random_gaussians"] = done
    res["random_mismatches"] = mism

    # every double near the refinement thresholds norm/C_REF = 2**(m - 1/2)
    near = 0
    flips = 0
    for m in range(-8, 10):
        t = gc.C_REF * 2.0 ** (m - 0.5)
        xs = [t]
        up = dn = t
        for _ in range(2000):
            up, dn = np.nextafter(up, np.inf), np.nextafter(dn, 0)
            xs += [up, dn]
        norms = np.array(xs)
        old = np.floor(np.log2(norms / gc.C_REF) + 0.5)
        new = gc.round_log2(norms / gc.C_REF)
        flips += int(np.sum(old != new))
        near += norms.size
    res["refine_threshold_neighbourhood_doubles"] = near
    res["refine_threshold_neighbourhood_mismatches"] = flips

    # shape multiplier: exact_log2 against libm log2 on 10^6 random doubles over the range in use
    x = np.exp(rng.uniform(math.log(1e-4), math.log(1e4), 1_000_000))
    d = gc.exact_log2(x) - np.log2(x)
    res["exact_log2_vs_libm"] = {"samples": x.size, "identical": int(np.sum(d == 0)),
                                 "max_abs_difference": float(np.max(np.abs(d)))}
    res["real_files"] = real_files(a.images)
    res["seconds"] = round(time.time() - t0, 1)
    text = json.dumps(res, indent=1)
    print(text)
    if a.out:
        a.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
