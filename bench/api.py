"""What the web layer costs: answers per second through the JSON API (POST /api/v1/answer) and
through Gradio's queue API (/answer), against the same served app in one run, and `isnad ask
--questions` in one process.

    python bench/api.py --index ~/.local/share/isnad/index \\
        --questions ../shared/eval/arcd/questions.jsonl --limit 300

One `isnad serve --index INDEX` runs in its own process on a free loopback port (its data
folder a temp one). Closed-loop clients, `--clients` at a time (threads with keep-alive
connections, in this process), each ask the questions in turn for `--seconds`, first through
Gradio's queue (POST /gradio_api/call/answer, then its event stream to "complete"), then
through the API, then (the server idle) `isnad ask --questions` answers the same questions
(`--limit` of them) in a fresh process; `--rounds` times in turn, so the machine's other load
falls on each alike, pooled. In-process: the rate with the model's load included (as the issue
measured it), and without (a one-question run's time subtracted). Then one client on each path.
Answers/s (pooled, and each round's), p50/p95/max latency, errors, and the CPU the server spent
per answer (steadier than answers/s on a shared machine) are printed and written to
bench/results/api.json.

Targets (issue 22): at 16 clients the API gives >= 2x Gradio's answers/s, p95 <= 1 s, and
>= 80% of the in-process rate.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_QUESTIONS = ROOT / "bench" / "data" / "dated-questions.jsonl"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_questions(path: Path, limit: int) -> list[str]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            out.append(json.loads(line)["question"])
    return out[:limit] if limit else out


def api_answer(conn: http.client.HTTPConnection, question: str) -> None:
    body = json.dumps({"question": question}, ensure_ascii=False).encode("utf-8")
    conn.request("POST", "/api/v1/answer", body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    data = response.read()
    if response.status != 200 or b'"citations"' not in data:
        raise RuntimeError(f"API {response.status}: {data[:200]!r}")


def gradio_answer(conn: http.client.HTTPConnection, question: str) -> None:
    body = json.dumps({"data": [question, "", "", "", ""]}, ensure_ascii=False).encode("utf-8")
    conn.request("POST", "/gradio_api/call/answer", body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    data = response.read()
    if response.status != 200:
        raise RuntimeError(f"Gradio {response.status}: {data[:200]!r}")
    event = json.loads(data)["event_id"]
    conn.request("GET", f"/gradio_api/call/answer/{event}")
    response = conn.getresponse()
    stream = response.read().decode("utf-8")  # the stream ends after "complete" (or "error")
    if "event: complete" not in stream:
        raise RuntimeError(f"Gradio stream: {stream[:200]!r}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process `pid` has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(
    port: int, call, questions: list[str], clients: int, seconds: float, server_pid: int
) -> dict:
    """`clients` closed-loop clients for `seconds`: each answer's latency, the time taken, the
    CPU seconds the server and the clients spent, the errors (`summary` pools runs)."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def client(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        i = k
        while time.perf_counter() < stop:
            q = questions[i % len(questions)]
            i += clients
            started = time.perf_counter()
            try:
                call(conn, q)
            except Exception as exc:  # counted and reported, the run goes on
                with lock:
                    errors.append(str(exc)[:200])
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                continue
            with lock:
                latencies.append(time.perf_counter() - started)
        conn.close()

    began, server_cpu, client_cpu = (
        time.perf_counter(),
        cpu_seconds(server_pid),
        time.process_time(),
    )
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    server_cpu = cpu_seconds(server_pid) - server_cpu
    client_cpu = time.process_time() - client_cpu
    return {
        "clients": clients,
        "latencies": latencies,
        "elapsed": elapsed,
        "server_cpu": server_cpu,
        "client_cpu": client_cpu,
        "errors": errors,
    }


def summary(runs: list[dict]) -> dict:
    """Runs of one kind pooled: answers/s over their whole time, latency percentiles over all
    their answers, CPU per answer, and each run's own answers/s (the spread)."""
    latencies = sorted(x for r in runs for x in r["latencies"])
    elapsed = sum(r["elapsed"] for r in runs)
    errors = [e for r in runs for e in r["errors"]]
    n = max(len(latencies), 1)

    def pct(p: float) -> float | None:
        if not latencies:
            return None
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 1)

    return {
        "clients": runs[0]["clients"],
        "seconds": round(elapsed, 2),
        "answers": len(latencies),
        "answers_per_s": round(len(latencies) / elapsed, 2),
        "answers_per_s_each_run": [round(len(r["latencies"]) / r["elapsed"], 2) for r in runs],
        "p50_ms": pct(0.50),
        "p95_ms": pct(0.95),
        "max_ms": round(latencies[-1] * 1000, 1) if latencies else None,
        "server_cpu_ms_per_answer": round(sum(r["server_cpu"] for r in runs) / n * 1000, 1),
        "client_cpu_ms_per_answer": round(sum(r["client_cpu"] for r in runs) / n * 1000, 1),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
    }


def serve(index: Path, port: int, work: Path) -> subprocess.Popen:
    env = dict(os.environ, XDG_DATA_HOME=str(work / "data"), ISNAD_UPLOADS=str(work / "up"))
    env.pop("ISNAD_AUTH", None)
    env["ISNAD_AUTH_FILE"] = str(work / "no-auth-file")
    cmd = [
        sys.executable,
        str(ROOT / "cli.py"),
        "serve",
        "--index",
        str(index),
        "--port",
        str(port),
    ]
    server = subprocess.Popen(
        cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(work / "serve.log", "w")
    )
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/api/v1/openapi.json")
            if conn.getresponse().status == 200:
                return server
        except OSError:
            pass
        if server.poll() is not None:
            raise SystemExit(f"isnad serve stopped: see {work / 'serve.log'}")
        time.sleep(0.5)
    server.kill()
    raise SystemExit("isnad serve did not answer within 180 s")


def in_process(index: Path, work: Path):
    """A function running `isnad ask --questions` over questions: (seconds, CPU seconds)."""

    def run(qs: list[str]) -> float:
        path = work / f"q{len(qs)}.jsonl"
        lines = [json.dumps({"id": i, "question": q}, ensure_ascii=False) for i, q in enumerate(qs)]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        cmd = [sys.executable, str(ROOT / "cli.py"), "ask", "--questions", str(path), "--json",
               "--index", str(index)]  # fmt: skip
        started, cpu = time.perf_counter(), os.times()
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
        seconds, after = time.perf_counter() - started, os.times()
        assert len(out.stdout.splitlines()) == len(qs), "one answer a question"
        used = (after.children_user - cpu.children_user) + (
            after.children_system - cpu.children_system
        )
        return seconds, used

    return run


def in_process_summary(runs: list[tuple[float, float]], one: tuple[float, float], n: int) -> dict:
    """`isnad ask --questions` runs of `n` questions pooled, and a one-question run (the
    model's and index's load, and one answer)."""
    whole = sum(t for t, _ in runs)
    cpu = sum(c for _, c in runs)
    k = len(runs)
    return {
        "questions": n,
        "runs": k,
        "seconds_each_run": [round(t, 2) for t, _ in runs],
        "load_and_one_question_s": round(one[0], 2),
        "cpu_ms_per_answer_without_load": round((cpu - k * one[1]) / (k * (n - 1)) * 1000, 1),
        "answers_per_s_with_load": round(k * n / whole, 2),
        "answers_per_s_without_load": round(k * (n - 1) / max(whole - k * one[0], 1e-9), 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--index", type=Path, required=True, help="an index built with the default model"
    )
    ap.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS, help="JSONL with question")
    ap.add_argument("--limit", type=int, default=300, help="questions used (0: all)")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=20.0, help="per phase and round")
    ap.add_argument("--rounds", type=int, default=3, help="Gradio, API, in-process, in turn")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "api.json")
    args = ap.parse_args()
    questions = read_questions(args.questions, args.limit)
    load_at_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="isnad-bench-api-") as tmp:
        work = Path(tmp)
        port = free_port()
        server = serve(args.index, port, work)
        ask_all = in_process(args.index, work)
        runs: dict[str, list] = {"gradio": [], "api": [], "in_process": []}
        try:
            for call in (api_answer, gradio_answer):  # warm both paths up
                call(http.client.HTTPConnection("127.0.0.1", port, timeout=60), questions[0])
            # in turn, so that the machine's other load falls on each way alike; the server
            # idles while `isnad ask` runs
            for r in range(args.rounds):
                for name, call in (("gradio", gradio_answer), ("api", api_answer)):
                    run = load(port, call, questions, args.clients, args.seconds, server.pid)
                    runs[name].append(run)
                    print(f"round {r + 1} {name}: {summary([run])['answers_per_s']}/s", flush=True)
                runs["in_process"].append(ask_all(questions))
                print(f"round {r + 1} in-process: {runs['in_process'][-1][0]:.1f} s", flush=True)
            one = ask_all(questions[:1])
            phases = {name: summary(runs[name]) for name in ("gradio", "api")}
            for name, call in (("gradio_1", gradio_answer), ("api_1", api_answer)):
                phases[name] = summary([load(port, call, questions, 1, args.seconds, server.pid)])
        finally:
            server.terminate()
            server.wait(30)
        phases["in_process"] = in_process_summary(runs["in_process"], one, len(questions))
    api, gradio, local = phases["api"], phases["gradio"], phases["in_process"]
    verdict = {
        "api_over_gradio": round(api["answers_per_s"] / max(gradio["answers_per_s"], 1e-9), 2),
        "api_p95_ms": api["p95_ms"],
        "api_over_in_process_with_load": round(
            api["answers_per_s"] / local["answers_per_s_with_load"], 2
        ),
        "api_over_in_process_without_load": round(
            api["answers_per_s"] / local["answers_per_s_without_load"], 2
        ),
    }
    verdict["targets_met"] = (
        verdict["api_over_gradio"] >= 2
        and (api["p95_ms"] or 1e9) <= 1000
        and verdict["api_over_in_process_with_load"] >= 0.8
        and api["errors"] == 0
    )
    result = {
        "index": str(args.index),
        "questions": str(args.questions),
        "limit": len(questions),
        "cpus": os.cpu_count(),
        "load_average_at_start": load_at_start,
        "load_average_at_end": os.getloadavg(),
        "phases": phases,
        "verdict": verdict,
    }
    head = ("phase", "clients", "answers/s", "p50 ms", "p95 ms", "errors", "server CPU ms/answer")
    print("\n{:<11} {:>7} {:>10} {:>8} {:>8} {:>7} {:>21}".format(*head))
    for name, p in phases.items():
        if name != "in_process":
            cells = (name, p["clients"], p["answers_per_s"], p["p50_ms"], p["p95_ms"],
                     p["errors"], p["server_cpu_ms_per_answer"])  # fmt: skip
            print("{:<11} {:>7} {:>10} {:>8} {:>8} {:>7} {:>21}".format(*cells))
    print(f"in-process: {local['answers_per_s_with_load']}/s with the load, "
          f"{local['answers_per_s_without_load']}/s without, "
          f"{local['cpu_ms_per_answer_without_load']} CPU ms an answer")  # fmt: skip
    print("verdict:", verdict)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
