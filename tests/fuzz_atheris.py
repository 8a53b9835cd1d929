"""Coverage-guided fuzzing entry point (atheris; ``pip install 'inrcodec[fuzz]'``). Not collected by pytest.

    PYTHONPATH=$PWD python tests/fuzz_atheris.py -atheris_runs=20000 [-max_total_time=600] [CORPUS_DIR]

Each input is either a whole ``.inrc`` file (first byte even: the raw bytes, so libFuzzer's own mutations meet
the container's CRCs) or, far more usefully, a recipe (first byte odd): a seed file of the golden corpus and a
random seed for ``inrcodec.fuzzing.mutate``, which re-seals every mutated file. Anything but ``FormatError`` /
``InputError`` propagates and atheris reports it as a crash with the input that caused it.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from inrcodec.errors import InputError
    from inrcodec.fuzzing import SEED_MAKERS, decode_target, mutate

GOLDEN = Path(__file__).parent / "golden"
SEEDS = {p.stem: p.read_bytes() for p in sorted(GOLDEN.glob("*.inrc"))}
for _name, _make in SEED_MAKERS.items():
    SEEDS.setdefault(_name, _make())
NAMES = sorted(SEEDS)


def one_input(raw: bytes) -> None:
    if not raw:
        return
    if raw[0] % 2 == 0:
        data = raw[1:]
    else:
        fdp = atheris.FuzzedDataProvider(raw[1:])
        seed_file = SEEDS[NAMES[fdp.ConsumeIntInRange(0, len(NAMES) - 1)]]
        rng = random.Random(fdp.ConsumeBytes(16))
        data, _ = mutate(rng, seed_file, list(SEEDS.values()))
    try:
        decode_target(data)
    except InputError:  # FormatError is an InputError
        pass


def main() -> None:
    import torch

    torch.set_num_threads(1)
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
