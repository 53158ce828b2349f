"""A build whose embedding runs as a Ray Data job on a real two-node cluster on this machine.

Ray binds the machine's own address whatever it is told, and servers here may listen on
loopback only, so the cluster (a head and a second node, one CPU each) runs in a network
namespace of its own (`ip netns`, root) where loopback is all there is; the build runs there
too. Skipped without root, `ip` or Ray (`pip install -e ".[test]"` installs it).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from index.store import load_index
from qa.answer import Answerer

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PORT = 6390

if os.geteuid() != 0 or shutil.which("ip") is None:
    pytest.skip("needs root and iproute2 for a network namespace", allow_module_level=True)
pytest.importorskip("ray", reason='Ray is not installed: pip install -e ".[test]"')


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, model_cache):
    """(namespace, address, environment) of a head and a second node, loopback only."""
    ns, tmp = f"isnad-ray-{os.getpid()}", tmp_path_factory.mktemp("ray")
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "ISNAD_CACHE": model_cache}
    opts = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--object-store-memory=536870912",
            "--disable-usage-stats"]  # fmt: skip
    run = ["ip", "netns", "exec", ns]
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run([*run, "ip", "link", "set", "lo", "up"], check=True)
        head = [str(BIN / "ray"), "start", "--head", f"--port={PORT}", f"--temp-dir={tmp}",
                "--include-dashboard=false", *opts]  # fmt: skip
        subprocess.run([*run, *head], check=True, env=env, capture_output=True)
        node = [str(BIN / "ray"), "start", f"--address=127.0.0.1:{PORT}", *opts]
        subprocess.run([*run, *node], check=True, env=env, capture_output=True)
        yield ns, f"127.0.0.1:{PORT}", env
    finally:
        # `ray stop` would match every Ray process on the machine: kill this namespace's only
        pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout
        for pid in pids.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        subprocess.run(["ip", "netns", "delete", ns], check=False)


def map_workers(ns: str) -> list[int]:
    """The pids of the Ray Data actors embedding, inside the namespace."""
    pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout
    out = []
    for pid in pids.split():
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"MapWorker" in cmd:
            out.append(int(pid))
    return out


def test_a_ray_build_survives_a_killed_worker_and_equals_a_local_build(
    cluster, tmp_path, real_encoder
):
    ns, address, env = cluster
    ray_ix, local_ix = tmp_path / "ray-ix", tmp_path / "local-ix"
    killed: list[int] = []

    def kill_one_after_the_first_checkpoint():
        deadline = time.time() + 300
        while time.time() < deadline and not killed:
            shards = list((ray_ix / "pending").rglob("shard-*.npz"))
            workers = map_workers(ns)
            if shards and workers:
                os.kill(workers[0], signal.SIGKILL)
                killed.append(workers[0])
            time.sleep(0.2)

    killer = threading.Thread(target=kill_one_after_the_first_checkpoint, daemon=True)
    killer.start()
    build = [str(BIN / "isnad"), "index", "build", str(ROOT / "seeds"), "--index", str(ray_ix),
             "--ray", address, "--json"]  # fmt: skip
    out = subprocess.run(
        ["ip", "netns", "exec", ns, *build], env=env, capture_output=True, text=True, timeout=900
    )
    killer.join(timeout=1)
    assert out.returncode == 0, out.stderr[-2000:]
    assert killed, "no Ray worker was found to kill while the job ran"

    from index.build import build_index

    # Each actor embeds on one thread; bf16 sums differ by ~1e-5 between one and two threads,
    # enough to swap near-tied passages, so the local build runs on one thread too: the same
    # batches (index.build orders texts by tokens before either cuts them) on the same
    # arithmetic give the same vectors.
    threads = real_encoder.document_threads
    real_encoder.document_threads = 1
    try:
        build_index([ROOT / "seeds"], local_ix, real_encoder)
    finally:
        real_encoder.document_threads = threads
    a, b = load_index(ray_ix), load_index(local_ix)
    assert a.manifest["counts"] == b.manifest["counts"]
    assert [x.id for x in a.articles] == [x.id for x in b.articles]
    assert np.array_equal(a.chunk_start, b.chunk_start) and np.array_equal(a.sent_end, b.sent_end)
    assert (a.chunk_vectors * b.chunk_vectors).sum(1).min() >= 0.9999
    assert (a.sent_vectors * b.sent_vectors).sum(1).min() >= 0.9999
    questions = [
        "ما اسم معرض الصناعات الدفاعية؟",
        "What did the Syrian administration ask Turkey for?",
    ]
    for q in questions:
        hits = [Answerer(ix, real_encoder).retriever.search(q, 3) for ix in (a, b)]
        assert [h.chunk_row for h in hits[0]] == [h.chunk_row for h in hits[1]]
