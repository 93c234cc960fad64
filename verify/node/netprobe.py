"""A TCP listener and a TCP connector for the NetworkPolicy checks of verify/node (standard
library only, so that it runs in the worker images' own python3 through `kubectl exec`, and in
the network namespaces the tier makes).

  netprobe.py listen HOST PORT SECONDS   accept until SECONDS passed or stdin closes; prints
                                         "LISTENING" once, then "ACCEPT <peer-ip>" per
                                         connection (each gets "sfk\\n" and is closed)
  netprobe.py connect TIMEOUT HOST:PORT...
                                         one JSON line per target: {"target", "outcome"} with
                                         outcome connected | refused | timeout | error: ...
  netprobe.py resolve NAME               one JSON line: {"name", "addresses"} or {"error"}
"""
import json
import socket
import sys
import threading
import time


def listen(host: str, port: int, seconds: float) -> int:
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, port))
    srv.listen(64)
    srv.settimeout(0.5)
    stop = threading.Event()

    def watch_stdin() -> None:
        try:
            while sys.stdin.buffer.read(1):
                pass
        except (OSError, ValueError):
            pass
        stop.set()

    if not sys.stdin.isatty():
        threading.Thread(target=watch_stdin, daemon=True).start()
    print("LISTENING", flush=True)
    end = time.monotonic() + seconds
    while not stop.is_set() and time.monotonic() < end:
        try:
            conn, peer = srv.accept()
        except socket.timeout:
            continue
        print(f"ACCEPT {peer[0]}", flush=True)
        try:
            conn.sendall(b"sfk\n")
        except OSError:
            pass
        conn.close()
    srv.close()
    return 0


def connect(timeout: float, targets: list[str]) -> int:
    for target in targets:
        host, _, port = target.rpartition(":")
        t0 = time.monotonic()
        try:
            with socket.create_connection((host, int(port)), timeout=timeout):
                outcome = "connected"
        except ConnectionRefusedError:
            outcome = "refused"
        except socket.timeout:
            outcome = "timeout"
        except OSError as exc:
            outcome = f"error: {exc}"
        print(json.dumps({"target": target, "outcome": outcome,
                          "seconds": round(time.monotonic() - t0, 3)}), flush=True)
    return 0


def resolve(name: str) -> int:
    try:
        infos = socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)
        print(json.dumps({"name": name, "addresses": sorted({i[4][0] for i in infos})}))
    except OSError as exc:
        print(json.dumps({"name": name, "error": str(exc)}))
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 4 and argv[0] == "listen":
        return listen(argv[1], int(argv[2]), float(argv[3]))
    if len(argv) >= 3 and argv[0] == "connect":
        return connect(float(argv[1]), argv[2:])
    if len(argv) == 2 and argv[0] == "resolve":
        return resolve(argv[1])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
