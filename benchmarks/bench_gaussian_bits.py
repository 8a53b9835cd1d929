"""Where the bits of a Gaussian image go, and what context modelling would take out of the same Gaussians.

    PYTHONPATH=. python benchmarks/bench_gaussian_bits.py FILE.inrc ... [-o benchmarks/results/gaussian_bits]

Works on already-coded files (any section form): it parses each file's quantised Gaussians and re-codes exactly
those integers (bit-exact same reconstruction), so every figure compares coders, never fits. Per file:

* ``streams``: bytes of each attribute stream in the form-1 layout (per importance layer, summed; the gap bit
  lengths and the v0 / colour / v1 / v2 streams are ``encode_ints`` blobs with their length prefix, gap mantissas
  and refinement bits raw), plus the section's header bytes;
* ``form2``: the context-coded section's size (what the encoder writes now) and its saving;
* ``contexts``: for each context idea, the real bytes of the affected streams when split by that context, every
  group of a layer in one ``entropy.groups`` stream (what form 2 does), against the same streams unsplit; and the
  ideal figure (empirical conditional entropy with free tables: an upper bound of what any table could reach);
* ``neighbours``: correlation of each attribute with that of the nearest other Gaussian (all layers), and the
  ideal gain of coding a layer's lattice occupancy conditioned on the density of the layers decoded before it.

Writes ``<out>.json`` and ``<out>.png`` (bits per Gaussian by stream, per file).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inrcodec.container import read_container  # noqa: E402
from inrcodec.entropy import encode_ints  # noqa: E402
from inrcodec.entropy._bytes import varint  # noqa: E402
from inrcodec.entropy.groups import GroupWriter  # noqa: E402
from inrcodec.models import gaussian_codec as gc  # noqa: E402


def _blob(b: bytes) -> int:
    return len(varint(len(b))) + len(b)


def _entropy_bytes(sym: np.ndarray) -> float:
    if sym.size == 0:
        return 0.0
    _, c = np.unique(sym, return_counts=True)
    return float(-(c * np.log2(c / c.sum())).sum()) / 8


def _cond_entropy_bytes(sym: np.ndarray, ctx: np.ndarray) -> float:
    return sum(_entropy_bytes(sym[ctx == k]) for k in np.unique(ctx))


def _grouped(groups: list[np.ndarray]) -> int:
    w = GroupWriter()
    for g in groups:
        w.add(g)
    return len(w.finish())


def _split(x: np.ndarray, ctx: np.ndarray) -> list[np.ndarray]:
    return [x[ctx == k] for k in np.unique(ctx)]


def _half(x: np.ndarray) -> np.ndarray:
    return (x > np.sort(x)[x.size // 2]).astype(np.int64) if x.size else np.zeros(0, np.int64)


def _tertile(x: np.ndarray) -> np.ndarray:
    if not x.size:
        return np.zeros(0, np.int64)
    s = np.sort(x)
    return (x > s[x.size // 3]).astype(np.int64) + (x > s[2 * x.size // 3])


def _layer_streams(q: gc.QuantizedGaussians, steps: gc.Steps) -> dict[str, np.ndarray]:
    q = q.select(np.argsort(q.index, kind="stable"))
    g = np.diff(q.index, prepend=0)
    out = {"gap_len": gc._bit_length(g), "v0": q.shape[:, 0]}
    for j in range(q.color.shape[1]):
        out[f"c{j}"] = q.color[:, j]
    out["v1"], out["v2"] = q.shape[:, 1], q.shape[:, 2]
    return out


def _contexts(s: dict[str, np.ndarray], nc: int) -> dict[str, tuple[list[str], list[np.ndarray]]]:
    """Context ideas: name -> (streams they touch, one context array per touched stream)."""
    v0, c0 = s["v0"], s["c0"]
    colours = [f"c{j}" for j in range(nc)]
    chroma = colours[1:]
    prev_gap = np.concatenate([[0], s["gap_len"][:-1]])
    return {
        "colours | v0 half (form 2)": (colours, [_half(v0)] * nc),
        "colours | v0 tertile": (colours, [_tertile(v0)] * nc),
        "chroma | |luma| tertile": (chroma, [_tertile(np.abs(c0))] * len(chroma)),
        "chroma | v0 tertile x |luma| tertile": (chroma, [3 * _tertile(v0) + _tertile(np.abs(c0))] * len(chroma)),
        "v1, v2 | v0 half": (["v1", "v2"], [_half(v0)] * 2),
        "v2 | |v1| tertile": (["v2"], [_tertile(np.abs(s["v1"]))]),
        "gap length | previous gap length half": (["gap_len"], [(prev_gap > np.sort(s["gap_len"])[
            s["gap_len"].size // 2]).astype(np.int64)]),
    }


def _neighbours(q, layer, steps, h, w, counts) -> dict:
    from scipy.spatial import cKDTree

    means, v, colors = gc.dequantize(q, steps, h, w)
    _, nb = cKDTree(means).query(means, k=2)
    nb = nb[:, 1]
    corr = {name: round(float(np.corrcoef(col, col[nb])[0, 1]), 3) for name, col in
            [("v0", q.shape[:, 0]), ("v1", q.shape[:, 1]), ("v2", q.shape[:, 2])]
            + [(f"c{j}", q.color[:, j]) for j in range(q.color.shape[1])]}
    # occupancy of each layer's lattice cells given the count of earlier layers' Gaussians within 4 cells
    nx, ny = gc.lattice(h, w, float(gc.code_to_step(steps.pos)))
    iid = ctx = 0.0
    for lay in range(1, len(counts)):
        occ = np.minimum(np.bincount(q.index[layer == lay], minlength=nx * ny), 3)
        prev = np.bincount(q.index[layer < lay], minlength=nx * ny).reshape(ny, nx)
        r = 4
        c = np.pad(prev, ((r + 1, r), (r + 1, r))).cumsum(0).cumsum(1)
        win = (c[2 * r + 1:, 2 * r + 1:] - c[:-2 * r - 1, 2 * r + 1:] - c[2 * r + 1:, :-2 * r - 1]
               + c[:-2 * r - 1, :-2 * r - 1]).ravel()
        cls = np.minimum(np.floor(np.log2(win + 1) * 2).astype(np.int64), 7)
        iid += _entropy_bytes(occ)
        ctx += _cond_entropy_bytes(occ, cls) + 2 * 8  # + ~2 bytes per context for its probabilities
    return {"corr_with_nearest": corr,
            "occupancy_later_layers_ideal_bytes": {"iid": round(iid), "given_earlier_layers_density": round(ctx)}}


def analyse(path: Path) -> dict:
    c = read_container(path.read_bytes())
    h, w, nc = c.signal["shape"]
    section = c.sections["gaussians"]
    q, layer, steps, counts = gc.decode_section(section, h, w, nc)
    L = len(counts)
    streams: dict[str, int] = {}
    ideas: dict[str, dict[str, float]] = {}
    for lay in range(L):
        ql = q.select(np.flatnonzero(layer == lay))
        s = _layer_streams(ql, steps)
        g = np.diff(np.sort(ql.index), prepend=0)
        wbits = np.maximum(gc._bit_length(g) - 1, 0)
        streams["gap_raw"] = streams.get("gap_raw", 0) + 1 + (int(wbits.sum()) + 7) // 8
        for name, sym in s.items():
            streams[name] = streams.get(name, 0) + _blob(encode_ints(sym))
        v0 = gc._dequantize_v0(ql.shape[:, 0], steps)
        k = gc.refine_bits(gc.basis_product(ql.color * gc._color_steps(v0, steps), gc.color_basis(nc)),
                           steps.refine)
        streams["refine"] = streams.get("refine", 0) + 2 + (2 * int(k.sum()) + 7) // 8
        for idea, (names, ctxs) in _contexts(s, nc).items():
            d = ideas.setdefault(idea, {"unsplit": 0, "split": 0, "ideal_unsplit": 0.0, "ideal_split": 0.0})
            d["unsplit"] += _grouped([s[n] for n in names])
            d["split"] += _grouped([grp for n, cx in zip(names, ctxs) for grp in _split(s[n], cx)])
            d["ideal_unsplit"] += sum(_entropy_bytes(s[n]) for n in names)
            d["ideal_split"] += sum(_cond_entropy_bytes(s[n], cx) for n, cx in zip(names, ctxs))
    form1 = gc.encode_section(q, layer, L, steps, form=gc.FORM_LEGACY)
    form2 = gc.encode_section(q, layer, L, steps, form=gc.FORM_CONTEXT)
    streams["headers"] = len(form1) - sum(streams.values())
    n = len(q.index)
    return {"file": path.name, "pixels": h * w, "gaussians": n, "layers": counts, "file_bytes": len(c.sections)
            and len(path.read_bytes()), "section_form": 2 if section[0] == 0 else 1,
            "form1_bytes": len(form1), "form2_bytes": len(form2),
            "form2_saving_pct": round(100 * (len(form2) - len(form1)) / len(form1), 2),
            "streams_form1_bytes": streams,
            "bits_per_gaussian": {k: round(8 * v / n, 2) for k, v in streams.items()},
            "contexts": {k: {kk: round(vv, 1) for kk, vv in v.items()} | {
                "saving_pct_of_section": round(100 * (v["split"] - v["unsplit"]) / len(form1), 2),
                "ideal_saving_pct_of_section": round(100 * (v["ideal_split"] - v["ideal_unsplit"]) / len(form1), 2)}
                for k, v in ideas.items()},
            "neighbours": _neighbours(q, layer, steps, h, w, counts)}


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rows[0]["bits_per_gaussian"])
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(rows) + 3), 4))
    bottom = np.zeros(len(rows))
    for name in names:
        vals = np.array([r["bits_per_gaussian"].get(name, 0.0) for r in rows])
        ax.bar(range(len(rows)), vals, bottom=bottom, label=name)
        bottom += vals
    ax.set_xticks(range(len(rows)), [r["file"].replace(".inrc", "") for r in rows], rotation=60, fontsize=7)
    ax.set_ylabel("bits per Gaussian (form-1 layout)")
    ax.set_title("Gaussian section: bits per Gaussian by stream")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("-o", "--out", type=Path, default=ROOT / "benchmarks" / "results" / "gaussian_bits")
    ap.add_argument("--note", default="")
    a = ap.parse_args()
    rows = [analyse(p) for p in a.files]
    for r in rows:
        print(r["file"], r["gaussians"], "form1", r["form1_bytes"], "form2", r["form2_bytes"],
              f"{r['form2_saving_pct']:+.2f}%", r["bits_per_gaussian"], flush=True)
    ideas = list(rows[0]["contexts"])
    summary = {k: {"mean_saving_pct_of_section": round(float(np.mean([r["contexts"][k]["saving_pct_of_section"]
                                                                       for r in rows])), 2),
                   "mean_ideal_saving_pct_of_section": round(float(np.mean(
                       [r["contexts"][k]["ideal_saving_pct_of_section"] for r in rows])), 2)} for k in ideas}
    tot = {k: sum(r["streams_form1_bytes"][k] for r in rows) for k in rows[0]["streams_form1_bytes"]}
    out = {"command": "python " + " ".join(sys.argv), "note": a.note, "load_average": os.getloadavg(),
           "form2_mean_saving_pct": round(float(np.mean([r["form2_saving_pct"] for r in rows])), 2),
           "share_of_bytes_pct": {k: round(100 * v / sum(tot.values()), 1) for k, v in tot.items()},
           "contexts_summary": summary, "files": rows}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_suffix(".json").write_text(json.dumps(out, indent=1))
    plot(rows, a.out.with_suffix(".png"))
    print(json.dumps({k: out[k] for k in ("form2_mean_saving_pct", "share_of_bytes_pct", "contexts_summary")},
                     indent=1))


if __name__ == "__main__":
    main()
