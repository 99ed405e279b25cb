#!/usr/bin/env python3
"""Measures what a running credbridge costs, to size Kubernetes requests and limits.

Starts the given credbridge binary on a free loopback port, then reports its resident
memory (VmRSS, and the peak VmHWM) and CPU use (from /proc/PID/stat) while idle, and while
a load shaped like Skyvern's (mostly reads, some creates and deletes, every call with a
token) runs at a fixed rate. Standard library only; Linux only.

    cargo build --release
    python3 tests/bench/footprint.py target/release/credbridge                 # memory backend
    python3 tests/bench/footprint.py target/release/credbridge --config F.toml  # any backend

FOOTPRINT_RATE (requests per second, default 200), FOOTPRINT_SECONDS (default 30) and
FOOTPRINT_IDLE_SECONDS (default 10) tune it. The load generator runs in this process, so on
a small machine keep the rate well below what the machine can generate.
"""

import http.client
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time

TOKEN = "footprint-token-0123456789abcdef"
TICKS = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of stat; fields[0] here is field 3.
    return (int(fields[11]) + int(fields[12])) / TICKS


def measure(pid, seconds):
    """CPU used (as a share of one core) and the RSS over `seconds`."""
    start_cpu, start = cpu_seconds(pid), time.monotonic()
    rss = []
    while time.monotonic() - start < seconds:
        rss.append(status_kib(pid, "VmRSS"))
        time.sleep(0.5)
    used = cpu_seconds(pid) - start_cpu
    return used / (time.monotonic() - start), max(rss)


def wait_until_serving(port, process):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"credbridge exited with {process.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit("credbridge did not start serving")


class Load:
    """Skyvern-like calls at a fixed rate: 80% reads, 10% creates, 10% deletes."""

    def __init__(self, port, rate, seconds, workers=8):
        self.port, self.rate, self.seconds, self.workers = port, rate, seconds, workers
        self.ids, self.lock = [], threading.Lock()
        self.done, self.errors, self.latencies = 0, 0, []

    def call(self, connection, method, path, body=None):
        headers = {"Authorization": f"Bearer {TOKEN}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()

    def create(self, connection):
        body = json.dumps({
            "name": "shop login", "type": "password", "username": "ada@example.com",
            "password": "correct horse battery staple", "totp": None, "totp_type": "none",
        })
        status, answer = self.call(connection, "POST", "/api/v1/credentials", body)
        if status == 200:
            with self.lock:
                self.ids.append(json.loads(answer)["id"])
        return status

    def worker(self, index, start):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        interval = self.workers / self.rate
        next_at = start + index * interval / self.workers
        while next_at < start + self.seconds:
            time.sleep(max(0.0, next_at - time.monotonic()))
            next_at += interval
            roll = random.random()
            began = time.monotonic()
            try:
                with self.lock:
                    known = random.choice(self.ids) if self.ids else None
                if known is None or roll < 0.1:
                    status = self.create(connection)
                elif roll < 0.2:
                    with self.lock:
                        if known in self.ids:
                            self.ids.remove(known)
                    status, _ = self.call(connection, "DELETE", f"/api/v1/credentials/{known}")
                else:
                    status, _ = self.call(connection, "GET", f"/api/v1/credentials/{known}")
            except OSError:
                status = 0
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            with self.lock:
                self.done += 1
                self.errors += status != 200
                self.latencies.append(time.monotonic() - began)

    def run(self):
        for _ in range(50):
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            self.create(connection)
        start = time.monotonic() + 0.1
        threads = [threading.Thread(target=self.worker, args=(i, start)) for i in range(self.workers)]
        for thread in threads:
            thread.start()
        return threads


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    binary, args = sys.argv[1], sys.argv[2:]
    rate = float(os.environ.get("FOOTPRINT_RATE", "200"))
    seconds = float(os.environ.get("FOOTPRINT_SECONDS", "30"))
    idle_seconds = float(os.environ.get("FOOTPRINT_IDLE_SECONDS", "10"))
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CREDBRIDGE_")}
    environment.update({
        "CREDBRIDGE_TOKEN": TOKEN,
        "CREDBRIDGE_LISTEN": f"127.0.0.1:{port}",
        "CREDBRIDGE_LOG__LEVEL": "warn",
        "CREDBRIDGE_RATE_LIMIT__ENABLED": "false",
    })
    process = subprocess.Popen([binary, *args, "serve"], env=environment,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_serving(port, process)
        idle_cpu, idle_rss = measure(process.pid, idle_seconds)
        load = Load(port, rate, seconds)
        threads = load.run()
        load_cpu, load_rss = measure(process.pid, seconds)
        for thread in threads:
            thread.join()
        peak = status_kib(process.pid, "VmHWM")
        latencies = sorted(load.latencies) or [0.0]
        p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
        print(f"idle:  {idle_cpu * 1000:6.1f} millicores  RSS {idle_rss / 1024:6.1f} MiB")
        print(f"load:  {load_cpu * 1000:6.1f} millicores  RSS {load_rss / 1024:6.1f} MiB  "
              f"({load.done / seconds:.0f} req/s offered {rate:.0f}, {load.errors} errors, "
              f"p99 {p99:.1f} ms)")
        print(f"peak RSS (VmHWM): {peak / 1024:.1f} MiB")
    finally:
        process.terminate()
        process.wait()


if __name__ == "__main__":
    main()
