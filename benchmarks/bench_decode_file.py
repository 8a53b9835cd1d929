"""Wall-clock of decompress on one .inrc file, per torch thread count (median / min of 9 after a warm-up): the
decode target of issue 13 (a Kodak image <= 100 ms on 2 cores). Usage: bench_decode_file.py FILE > result.json"""
import json, os, platform, statistics, subprocess, sys, time
import torch
from inrcodec import decompress
from inrcodec.container import read_container
path = sys.argv[1]
data = open(path, 'rb').read()
out = {"command": "python -m inrcodec fit /work/shared/data/kodak/kodim07.png --bpp 0.6 -o /tmp/k7.inrc; "
                  "python benchmarks/bench_decode_file.py /tmp/k7.inrc (decompress timed 9x after one warm-up, per thread count)",
       "git_commit": subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip(),
       "file_bytes": len(data), "dct_format": read_container(data).sections["dct"][0],
       "cpu": platform.processor() or platform.machine(), "load_before": os.getloadavg()}
for th in (2, 1):
    torch.set_num_threads(th)
    decompress(data)
    ts = []
    for _ in range(9):
        t = time.perf_counter(); decompress(data); ts.append(time.perf_counter() - t)
    out[f"wall_ms_{th}_threads"] = {"median": statistics.median(ts) * 1e3, "min": min(ts) * 1e3}
    cpu = []  # process CPU (all threads): comparable under a shared machine's load, where wall is not
    for _ in range(9):
        t = time.process_time(); decompress(data); cpu.append(time.process_time() - t)
    out[f"cpu_ms_{th}_threads"] = {"median": statistics.median(cpu) * 1e3, "min": min(cpu) * 1e3}
out["load_after"] = os.getloadavg()
print(json.dumps(out, indent=1))
