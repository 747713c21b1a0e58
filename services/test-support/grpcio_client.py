"""A gRPC client nobody in this project wrote: Python grpcio (grpc-core), with
its own DNS resolver and the round_robin policy, otherwise default settings.

Calls one unary method in a loop from a few threads until a line arrives on
stdin (or stdin closes), and prints JSON lines on stdout:
  {"t": 1.5, "ok": 812, "failed": 0, "peers": ["127.0.1.2:5000", ...], "connections_seen": 3}
                                                         every --every seconds
  {"done": true, "ok": ..., "failed": ..., "codes": {"UNAVAILABLE": 3},
   "first_failure_t": ..., "last_failure_t": ..., "failures": ["..."]}   at the end
"peers" are the servers this process holds established TCP connections to:
round_robin sends calls over every connected subchannel, so a peer listed
there is a server that takes this client's calls. "connections_seen" counts
the distinct connections seen so far: it grows as servers age them out.

Usage: grpcio_client.py TARGET [--method /rpc.Rpc/ListChampions] [--threads 4] [--every 0.5]
"""

import argparse
import collections
import json
import os
import sys
import threading
import time

import grpc


def decode_address(hex_address):
    """An address of /proc/net/tcp or tcp6 as text; IPv4-mapped IPv6 as IPv4."""
    ip_hex, port_hex = hex_address.split(":")
    if len(ip_hex) == 32 and ip_hex.startswith("0000000000000000FFFF0000"):
        ip_hex = ip_hex[24:]
    if len(ip_hex) == 8:
        ip = ".".join(str(int(ip_hex[i : i + 2], 16)) for i in (6, 4, 2, 0))
    else:
        words = [ip_hex[i : i + 8] for i in range(0, 32, 8)]
        ip = ":".join("".join(word[j : j + 2] for j in (6, 4, 2, 0)) for word in words)
    return ip, int(port_hex, 16)


def connections(port):
    """(local port, server) of this process's established TCP connections to `port`."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[len("socket:[") : -1])
    found = set()
    for path in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        with open(path) as table:
            next(table)
            for line in table:
                columns = line.split()
                local, remote, state, inode = columns[1], columns[2], columns[3], columns[9]
                if state != "01" or inode not in inodes:
                    continue
                ip, remote_port = decode_address(remote)
                if remote_port == port:
                    found.add((decode_address(local)[1], f"{ip}:{port}"))
    return found


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("target", help="e.g. dns://127.0.0.1:8600/game-server.local:5000")
    parser.add_argument("--method", default="/rpc.Rpc/ListChampions")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--every", type=float, default=0.5)
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args()
    port = int(args.target.rsplit(":", 1)[1])

    channel = grpc.insecure_channel(args.target, options=[("grpc.lb_policy_name", "round_robin")])
    call = channel.unary_unary(args.method)
    started = time.monotonic()
    lock = threading.Lock()
    counts = {"ok": 0, "failed": 0}
    codes = collections.Counter()
    failures = []
    failure_times = []
    stop = threading.Event()
    seen = set()

    def caller():
        while not stop.is_set():
            try:
                call(b"", timeout=args.timeout)
                with lock:
                    counts["ok"] += 1
            except grpc.RpcError as error:
                at = round(time.monotonic() - started, 3)
                with lock:
                    counts["failed"] += 1
                    codes[error.code().name] += 1
                    failure_times.append(at)
                    if len(failures) < 20:
                        failures.append(f"{at}s {error.code().name}: {error.details()}")

    def reporter():
        while not stop.wait(args.every):
            with lock:
                line = {"t": round(time.monotonic() - started, 3), **counts}
            now = connections(port)
            seen.update(now)
            line["peers"] = sorted({server for _, server in now})
            line["connections_seen"] = len(seen)
            print(json.dumps(line), flush=True)

    threads = [threading.Thread(target=caller, daemon=True) for _ in range(args.threads)]
    threads.append(threading.Thread(target=reporter, daemon=True))
    for thread in threads:
        thread.start()
    sys.stdin.readline()
    stop.set()
    for thread in threads:
        thread.join(timeout=args.timeout + 1)
    summary = {
        "done": True,
        **counts,
        "codes": dict(codes),
        "first_failure_t": min(failure_times, default=None),
        "last_failure_t": max(failure_times, default=None),
        "failures": failures,
    }
    print(json.dumps(summary), flush=True)
    channel.close()


if __name__ == "__main__":
    main()
