#!/usr/bin/env python3
"""The HTTP API's cost and throughput (README "HTTP API"), one run, one model:

1. overhead: one greedy streamed request of N tokens, timed by its client, through
   - in-process `specd generate --json` (the engine's own TTFT + decode time: no transport),
   - the Unix-socket protocol (`specctl generate --json`, one process per request: exec and connect included),
   - HTTP (a persistent connection, SSE), and HTTP non-streamed;
2. throughput: C concurrent streaming HTTP clients (default 1, 4, 16, 64), each running R requests:
   aggregate generated tok/s, mean TTFT and per-request latency.

usage: bench/http_bench.py --model M.gguf [--tokens 128] [--clients 1,4,16,64] [--requests 4]
       [--decoder ar] [--threads N] [--build build] [--port P --model-name NAME]
Prints one JSON line per measurement and a table. Starts its own daemon on a free loopback port, or
with --port measures only the throughput of a server already there (e.g. llama-server on the same model).
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

PROMPT = "Once upon a time"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class HttpConn:
    """A minimal HTTP/1.1 client on one keep-alive connection (the bench's own client; the server is h2o)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def _read_more(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("closed")
        self.buf += data

    def _read_line(self):
        while b"\r\n" not in self.buf:
            self._read_more()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _read_exact(self, n):
        while len(self.buf) < n:
            self._read_more()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def post(self, path, body, on_chunk=None):
        """Sends body; returns (status, response bytes). on_chunk(bytes) is called per chunk as it arrives."""
        data = json.dumps(body).encode()
        self.sock.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                          % (path.encode(), len(data)) + data)
        status = int(self._read_line().split()[1])
        headers = {}
        while True:
            line = self._read_line()
            if not line:
                break
            k, v = line.split(b":", 1)
            headers[k.strip().lower()] = v.strip()
        out = b""
        if headers.get(b"transfer-encoding") == b"chunked":
            while True:
                size = int(self._read_line().split(b";")[0], 16)
                chunk = self._read_exact(size + 2)[:-2]
                if size == 0:
                    break
                out += chunk
                if on_chunk:
                    on_chunk(chunk)
        else:
            out = self._read_exact(int(headers.get(b"content-length", b"0")))
        return status, out


def stream_request(conn, tokens, decoder, model="m"):
    """One streamed completion: (seconds to first token, total seconds, completion tokens)."""
    t0 = time.perf_counter()
    first = [None]

    def on_chunk(chunk):
        if first[0] is None and b'"text"' in chunk:
            first[0] = time.perf_counter()

    body = {"model": model, "prompt": PROMPT, "max_tokens": tokens, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}, "specd": {"decoder": decoder}}
    status, out = conn.post("/v1/completions", body, on_chunk)
    t1 = time.perf_counter()
    if status != 200:
        raise RuntimeError("HTTP %d: %s" % (status, out[:200]))
    usage, chunks = None, 0
    for event in out.split(b"\n\n"):
        if not event.startswith(b"data: {"):
            continue
        j = json.loads(event[6:])
        if j.get("usage"):
            usage = j["usage"]
        chunks += sum(1 for c in j.get("choices", []) if c.get("text"))
    return (first[0] or t1) - t0, t1 - t0, usage["completion_tokens"] if usage else chunks


def reporter(rows):
    def report(what, **fig):
        fig = {"what": what, **fig}
        rows.append(fig)
        print(json.dumps(fig), flush=True)
    return report


def throughput(a, port, rows):
    """C concurrent streaming clients, each running a.requests requests one after another."""
    report = reporter(rows)
    for c in [int(x) for x in a.clients.split(",")]:
        results, errors = [], []

        def client():
            try:
                cc = HttpConn(port)
                for _ in range(a.requests):
                    try:
                        results.append(stream_request(cc, a.tokens, a.decoder, a.model_name))
                    except ConnectionError:  # a server that closes after each stream (llama-server does)
                        cc = HttpConn(port)
                        results.append(stream_request(cc, a.tokens, a.decoder, a.model_name))
            except Exception as e:  # noqa: BLE001 — reported below
                errors.append(str(e))

        ts = [threading.Thread(target=client) for _ in range(c)]
        t0 = time.perf_counter()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        wall = time.perf_counter() - t0
        toks = sum(r[2] for r in results)
        report("throughput", clients=c, requests=len(results), errors=len(errors), wall_s=round(wall, 3),
               agg_tok_s=round(toks / wall, 1), ttft_ms=round(statistics.mean(r[0] for r in results) * 1000, 2) if results else None,
               latency_s=round(statistics.mean(r[1] for r in results), 3) if results else None)
        if errors:
            print("errors: " + errors[0], file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--clients", default="1,4,16,64")
    ap.add_argument("--requests", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--decoder", default="ar")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--build", default="build")
    ap.add_argument("--port", type=int, default=0, help="an OpenAI-compatible server already listening: throughput only")
    ap.add_argument("--model-name", default="m")
    a = ap.parse_args()
    if a.port:
        return throughput(a, a.port, [])
    specd = os.path.join(a.build, "daemon", "specd")
    specctl = os.path.join(a.build, "clients", "specctl")
    plugins = os.path.join(a.build, "plugins")
    tmp = tempfile.mkdtemp(prefix="specd-http-bench-")
    port = free_port()
    sock_path = os.path.join(tmp, "s.sock")
    threads = ["--threads", str(a.threads)] if a.threads else []
    log = open(os.path.join(tmp, "daemon.log"), "w")
    daemon = subprocess.Popen([specd, "serve", "--model", "m=" + a.model, "--socket", sock_path, "--runlog",
                               os.path.join(tmp, "runs.db"), "--plugin-dir", plugins, "--http", "127.0.0.1:%d" % port,
                               "--max-concurrent", "64", "--max-tokens", str(max(a.tokens, 16))] + threads,
                              stdout=log, stderr=log)
    try:
        for _ in range(600):
            try:
                HttpConn(port).sock.close()
                break
            except OSError:
                time.sleep(0.05)
        rows = []
        report = reporter(rows)

        # 1. overhead, single stream, medians over --repeat
        inproc = []
        for _ in range(a.repeat):
            out = subprocess.run([specd, "generate", "--model", a.model, "--prompt", PROMPT, "--max-tokens", str(a.tokens),
                                  "--decoder", a.decoder, "--plugin-dir", plugins, "--json"] + threads,
                                 capture_output=True, text=True, check=True).stdout
            j = json.loads(out)
            inproc.append((j["ttft_ms"] / 1000.0, (j["ttft_ms"] + j["decode_ms"]) / 1000.0, j["generated_tokens"]))
        sock = []
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            out = subprocess.run([specctl, "--socket", sock_path, "--json", "generate", "--prompt", PROMPT, "--max-tokens",
                                  str(a.tokens), "--decoder", a.decoder], capture_output=True, text=True, check=True).stdout
            t1 = time.perf_counter()
            j = json.loads(out)
            sock.append((j.get("ttft_ms", 0) / 1000.0, t1 - t0, j.get("generated_tokens", a.tokens)))
        conn = HttpConn(port)
        http = [stream_request(conn, a.tokens, a.decoder) for _ in range(a.repeat)]
        plain = []
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            st, out = conn.post("/v1/completions", {"prompt": PROMPT, "max_tokens": a.tokens, "temperature": 0,
                                                    "specd": {"decoder": a.decoder}})
            plain.append((0.0, time.perf_counter() - t0, json.loads(out)["usage"]["completion_tokens"]))
        for name, runs in (("in-process", inproc), ("socket (specctl)", sock), ("http stream", http), ("http whole", plain)):
            total = statistics.median(r[1] for r in runs)
            report("overhead", path=name, tokens=runs[0][2], median_s=round(total, 5),
                   ttft_ms=round(statistics.median(r[0] for r in runs) * 1000, 3), tok_s=round(runs[0][2] / total, 1))

        throughput(a, port, rows)
        print("\n| measure | figures |\n|---|---|", file=sys.stderr)
        for r in rows:
            print("| %s | %s |" % (r["what"], ", ".join("%s %s" % (k, v) for k, v in r.items() if k != "what")), file=sys.stderr)
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)


if __name__ == "__main__":
    main()
