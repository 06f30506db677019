#!/usr/bin/env python3
"""Start-up and idle figures of `waops serve`, over many starts.

For each start (default configuration: sandbox provider, a new SQLite file in a
new directory, so every start runs the migrations):
  - spawn -> "waops serving" log line read from stderr (ms)
  - spawn -> first /healthz answered 200 (ms)
  - idle RSS (VmRSS) and open descriptors, 1.5 s after start
Then SIGTERM, and the exit code must be 0.

Prints every start, then min / median / p90 / max, and the slowest starts.
Usage: python3 bench/startup.py [BIN] [STARTS]
       (defaults target/release/waops and 30; build it first with
        `cargo build --release --bin waops`)
"""
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthz(port):
    """True once /healthz answers 200 on this port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def one_start(binary):
    port = free_port()
    with tempfile.TemporaryDirectory() as work:
        env = dict(os.environ)
        env.update({
            "WAOPS__SERVER__BIND": f"127.0.0.1:{port}",
            "WAOPS__STORE__URL": f"sqlite://{work}/startup.db",
            "WAOPS__LOG__FORMAT": "json",
        })
        serving = {}
        started = time.monotonic()
        child = subprocess.Popen([binary, "serve"], env=env, cwd=work,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        def read_log():
            for line in child.stderr:
                if b"waops serving" in line and "at" not in serving:
                    serving["at"] = time.monotonic()
        reader = threading.Thread(target=read_log, daemon=True)
        reader.start()
        # Poll with a short pause between attempts: a tight loop would take one of
        # the two cores from the server it is timing.
        while not healthz(port):
            if child.poll() is not None:
                raise SystemExit(f"waops serve exited with {child.returncode}")
            time.sleep(0.0005)
        ready = time.monotonic()
        time.sleep(1.5)
        status = open(f"/proc/{child.pid}/status").read()
        rss_kb = int(next(l for l in status.splitlines() if l.startswith("VmRSS:")).split()[1])
        fds = len(os.listdir(f"/proc/{child.pid}/fd"))
        child.send_signal(signal.SIGTERM)
        code = child.wait(timeout=30)
        reader.join(timeout=5)
        if code != 0:
            raise SystemExit(f"exit code {code} after SIGTERM")
        return {
            "serving_ms": (serving.get("at", ready) - started) * 1000,
            "healthz_ms": (ready - started) * 1000,
            "rss_mb": rss_kb / 1024,
            "fds": fds,
        }


def summary(name, values, unit):
    values = sorted(values)
    p90 = values[min(len(values) - 1, int(round(0.9 * (len(values) - 1))))]
    print(f"{name}: min {values[0]:.1f}, median {statistics.median(values):.1f}, "
          f"p90 {p90:.1f}, max {values[-1]:.1f} {unit}")


def main():
    binary = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/release/waops")
    starts = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    print(f"machine: {os.cpu_count()} cores, {os.uname().release}, "
          f"{time.strftime('%Y-%m-%d', time.gmtime())}; binary {os.path.getsize(binary)} bytes")
    runs = []
    for i in range(starts):
        r = one_start(binary)
        runs.append(r)
        print(f"start {i + 1}: serving {r['serving_ms']:.1f} ms, /healthz {r['healthz_ms']:.1f} ms, "
              f"idle RSS {r['rss_mb']:.1f} MB, {r['fds']} open files")
    summary("spawn -> serving line", [r["serving_ms"] for r in runs], "ms")
    summary("spawn -> first /healthz 200", [r["healthz_ms"] for r in runs], "ms")
    summary("idle RSS", [r["rss_mb"] for r in runs], "MB")
    print(json.dumps({"slowest": sorted(runs, key=lambda r: -r["healthz_ms"])[:3]}))


if __name__ == "__main__":
    main()
