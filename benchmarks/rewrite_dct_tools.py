"""Copies of a ``gaussian+dct`` file with its ``dct`` section rewritten under each of format 7's tool sets (the
same symbols, 16x16 flags and filters, so the same decoded image): ``none`` (formats 2-6, main's), ``rich``
(``TOOL_RICH``), ``signs`` (``TOOL_SIGNS``), ``both``, with the sign stream's form 2 (``TOOL_SIGNS2``) ``signs2``
and ``both2``, ``groups`` (both and ``TOOL_GROUPS``, session 26), ``all`` (and the file's chroma-from-luma alphas,
``TOOL_CFL``, where it has them: the only set whose image is the file's when it does); for paired decode-CPU
measurements
(``bench_decode_file.py`` on each).

    PYTHONPATH=$PWD python benchmarks/rewrite_dct_tools.py FILE OUT_PREFIX   # writes OUT_PREFIX_{none,...,both2}.inrc
"""

from __future__ import annotations

import sys

from inrcodec.container import Container, read_container, write_container
from inrcodec.models import image_dct


def main() -> None:
    src, prefix = sys.argv[1], sys.argv[2]
    c = read_container(open(src, "rb").read())
    h, w, ch = (int(s) for s in c.signal["shape"])
    dct = c.sections["dct"]
    q, units, strength, flags, _, cfl = image_dct.decode_parts(dct, h, w, ch)
    filters, cross = _filter_bytes(dct, h, w, ch)
    both = image_dct.TOOL_RICH | image_dct.TOOL_SIGNS
    sign2 = image_dct.TOOL_SIGNS | image_dct.TOOL_SIGNS2  # the sign stream's form 2 (session 26)
    sets = {"none": None, "rich": image_dct.TOOL_RICH, "signs": image_dct.TOOL_SIGNS, "both": both,
            "signs2": sign2, "both2": image_dct.TOOL_RICH | sign2,
            "groups": both | image_dct.TOOL_GROUPS, "all": both | image_dct.TOOL_GROUPS}
    for name, tools in sets.items():
        keep = image_dct.RICH_MODEL, image_dct.SIGN_PREDICTION
        image_dct.RICH_MODEL, image_dct.SIGN_PREDICTION = False, "never"  # tools None: formats 2-6
        try:
            blob = image_dct.encode_section(q, units, strength, form=None if tools is None else image_dct.FORMAT_TOOLS,
                                            filters=filters, tx16=flags, cross=cross, tools=tools,
                                            cfl=cfl if name == "all" else None)
        finally:
            image_dct.RICH_MODEL, image_dct.SIGN_PREDICTION = keep
        assert (image_dct.decode_residual(blob, h, w, ch)[0] == q).all()
        out = write_container(Container(c.signal, c.model, c.config, dict(c.sections, dct=blob), c.extra))
        open(f"{prefix}_{name}.inrc", "wb").write(out)
        print(name, len(out), "bytes, dct format", blob[0], "tools", blob[1] if blob[0] == 7 else None)


def _filter_bytes(dct: bytes, h: int, w: int, c: int) -> tuple[bytes | None, bool]:
    """The restoration filters' bytes and form as stored (format 7's layout or formats 3/5/6's)."""
    from inrcodec.entropy._bytes import read_varint

    pos = 2 if dct[0] == image_dct.FORMAT_TOOLS else 1
    for _ in range(2 * c):
        _, pos = read_varint(dct, pos, "", 3)
    pos += 1
    if dct[0] in (image_dct.FORMAT_TX16, image_dct.FORMAT_TX16_RESTORE, image_dct.FORMAT_CROSS,
                  image_dct.FORMAT_TOOLS):
        n, pos = read_varint(dct, pos, "", 5)
        pos += n
    form = {image_dct.FORMAT_RESTORE: 1, image_dct.FORMAT_TX16_RESTORE: 1, image_dct.FORMAT_CROSS: 2}.get(dct[0], 0)
    if dct[0] == image_dct.FORMAT_TOOLS:
        form, pos = dct[pos], pos + 1
    if not form:
        return None, False
    n, pos = read_varint(dct, pos, "", 3)
    return dct[pos:pos + n], form == 2


if __name__ == "__main__":
    main()
