#!/usr/bin/env python3
"""http_server binary against hostile peers (issue 15): 200 half-sent
request heads against --max-connections 100 --header-timeout 2, then a
normal client; a 100 KB header line from a client that reads only after
sending it. Usage: http_hostile_e2e.py HTTP_SERVER [BACKEND]"""
import os, re, socket, subprocess, sys, time

exe = sys.argv[1]
env = dict(os.environ)
if len(sys.argv) > 2:
    env["WEFT_BACKEND"] = sys.argv[2]
HT = 2.0
srv = subprocess.Popen([exe, "--port", "0", "--max-connections", "100",
                        "--header-timeout", str(HT)], stdout=subprocess.PIPE, env=env, text=True)
fails = []
try:
    m = re.search(r"listening on 127\.0\.0\.1:(\d+)", srv.stdout.readline())
    if not m:
        sys.exit("no listening line")
    port = int(m.group(1))
    slow = []
    for _ in range(200):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n")
        slow.append(s)
    time.sleep(0.1)
    t0 = time.monotonic()
    c = socket.create_connection(("127.0.0.1", port))
    c.settimeout(15)
    c.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    data = b""
    while b"Hello, World!" not in data:
        d = c.recv(4096)
        if not d:
            break
        data += d
    served = time.monotonic() - t0
    print("normal client: %s after %.2f s" % ("served" if b"200 OK" in data else "NOT served", served))
    # The 100 slots are held by the first 100 for one header timeout, by the
    # 100 queued behind them for another: then the normal client's turn.
    if b"200 OK" not in data or served > 2 * HT + 1.5:
        fails.append("normal client")
    closed = 0
    for s in slow:
        s.settimeout(5)
        try:
            closed += s.recv(1) == b""
        except ConnectionResetError:
            closed += 1
        except OSError:
            pass
    print("slow connections closed by the server: %d of 200" % closed)
    if closed != 200:
        fails.append("slow connections")
    b = socket.create_connection(("127.0.0.1", port))
    b.settimeout(10)
    b.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"x" * 100000)
    try:
        line = b.recv(4096).split(b"\r\n")[0]
    except OSError as e:
        line = repr(e).encode()
    print("100 KB header line:", line.decode())
    if line != b"HTTP/1.1 431 Request Header Fields Too Large":
        fails.append("431")
finally:
    srv.terminate()
    rc = srv.wait(10)
if rc != 0:
    fails.append("exit status %d" % rc)
if fails:
    sys.exit("FAILED: " + ", ".join(fails))
