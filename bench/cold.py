"""Cold start: `isnad ask` from a fresh process, and `isnad serve` from start to first answer.

    python bench/cold.py --index ~/.local/share/isnad/index [--big-index /tmp/isnad-bench/news]

Each figure is the median of --runs fresh processes (wall time, peak RSS from
/usr/bin/time -v). The server is asked through gradio_client on 127.0.0.1 and stopped after its
first answer. Prints a table and writes bench/results/cold.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
QUESTION = "ما اسم معرض الصناعات الدفاعية؟"


def timed(cmd: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one run of cmd."""
    out = subprocess.run(
        ["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, check=True, timeout=600
    )
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", out.stderr)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", out.stderr)
    minutes, seconds = wall.group(1).rsplit(":", 1)
    return int(minutes.split(":")[-1]) * 60 + float(seconds), int(rss.group(1)) / 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_to_first_answer(index: Path) -> float:
    from gradio_client import Client

    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [str(BIN / "isnad"), "serve", "--index", str(index), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"},
    )
    try:
        while True:
            try:
                client = Client(f"http://127.0.0.1:{port}/", verbose=False)
                break
            except Exception:
                if proc.poll() is not None or time.perf_counter() - t0 > 120:
                    raise RuntimeError("the server did not come up") from None
                time.sleep(0.05)
        client.predict(QUESTION, api_name="/answer")
        return time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--index", type=Path, required=True, help="the seeds index")
    ap.add_argument("--big-index", type=Path, default=None, help="e.g. the 10k news index")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "cold.json")
    args = ap.parse_args()
    result = {}
    for name, index in (("seeds", args.index), ("big", args.big_index)):
        if index is None:
            continue
        runs = [timed([str(BIN / "isnad"), "ask", QUESTION, "--index", str(index)])
                for _ in range(args.runs)]  # fmt: skip
        result[f"ask_{name}"] = {
            "index": str(index),
            "seconds": round(statistics.median(r[0] for r in runs), 2),
            "peak_rss_mb": round(statistics.median(r[1] for r in runs)),
        }
    serve = [serve_to_first_answer(args.index) for _ in range(args.runs)]
    result["serve_seeds_first_answer_seconds"] = round(statistics.median(serve), 2)
    for key, value in result.items():
        print(f"{key:<34} {value}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
