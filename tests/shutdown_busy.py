#!/usr/bin/env python3
"""The example servers stopped while 1,000 connections are busy (issue 15).

For echo_server, http_server and resp_server on one backend: 1,000
connections each make requests back to back (one in flight at a time); once
every connection has been answered, SIGINT or SIGTERM arrives. Then:
- every request in flight at the signal gets its whole, correct response
  within the server's grace period;
- half the connections keep sending after the signal, half only wait: the
  server keeps answering the busy ones through its grace period (one is
  answered at least half the grace period after the signal: a server that
  closed at once would have answered only what it had already sent), and
  closes every connection (end of stream or reset) by the end of its grace
  period plus SLACK;
- no response is ever malformed (one cut short by the close at the end of
  the grace period is fine);
- the server says "SIGINT, closing" (or SIGTERM) and exits 0 (a sanitizer
  report makes it exit non-zero) within its grace plus SLACK, and writes
  nothing that looks like a sanitizer report.
The signal alternates per server and backend, and so does --threads (1, 2),
so every server meets both signals over the backends.
On a failure it prints what it saw: how many connections were closed and
answered after the signal and when, the server's output so far (its
"closing" line says whether the stop signal reached the loop) and, if it
was still running, each of its threads' state and signal masks from /proc
(SigPnd/ShdPnd: a signal the kernel still holds; SigBlk: who blocks it).
SHUTDOWN_ONLY=NAME (echo_server, http_server or resp_server) runs only that
server, to loop one case while hunting an intermittent failure.
Usage: shutdown_busy.py BACKEND ECHO_SERVER HTTP_SERVER RESP_SERVER"""
import glob, os, re, resource, selectors, signal, socket, subprocess, sys, tempfile, time

N = 1000
SLACK = 8.0  # seconds past a grace period (sanitizer builds are slow)

backend = sys.argv[1]
servers = [("echo_server", sys.argv[2], 2.0), ("http_server", sys.argv[3], 1.0),
           ("resp_server", sys.argv[4], 1.0)]
backend_index = {"io_uring": 0, "epoll": 1, "poll": 2, "kqueue": 3}.get(backend, 0)

# Each connection is a descriptor here and one in the server (which
# inherits this limit), plus the servers' own.
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
need = N + 200
if soft < need:
    if hard != resource.RLIM_INFINITY and hard < need:
        print("RLIMIT_NOFILE hard limit %d < %d: skipped" % (hard, need))
        sys.exit(77)
    resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


class Echo:
    def request(self, c):
        return b"%06d:%08d:abcdefghijklmnopqrstuvwxyz\n" % (c.index, c.sent)

    def complete(self, c):
        """Bytes of one whole response at the start of c.buf; 0: not yet;
        -1: malformed."""
        want = c.req
        if bytes(c.buf[:len(want)]) != want[:len(c.buf)]:
            return -1
        return len(want) if len(c.buf) >= len(want) else 0


class Fixed:
    def __init__(self, req, resp):
        self.req, self.resp = req, resp

    def request(self, c):
        return self.req

    def complete(self, c):
        if bytes(c.buf[:len(self.resp)]) != self.resp[:len(c.buf)]:
            return -1
        return len(self.resp) if len(c.buf) >= len(self.resp) else 0


class Http:
    def request(self, c):
        return b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"

    def complete(self, c):
        end = c.buf.find(b"\r\n\r\n")
        if end < 0:
            return -1 if len(c.buf) > 8192 else 0
        head = bytes(c.buf[:end])
        m = re.search(rb"\r\ncontent-length: *(\d+)", head, re.I)
        if not head.startswith(b"HTTP/1.1 200 ") or not m:
            return -1
        total = end + 4 + int(m.group(1))
        return total if len(c.buf) >= total else 0


def proc_state(pid):
    """Each thread of pid: name, state, where it sleeps, its signal sets."""
    out = []
    for task in sorted(glob.glob("/proc/%d/task/*" % pid)):
        try:
            with open(task + "/status") as f:
                st = dict(l.rstrip("\n").split(":\t", 1) for l in f if ":\t" in l)
            with open(task + "/wchan") as f:
                wchan = f.read().strip()
        except OSError:
            continue  # the thread is gone
        out.append("  tid %s %s %s wchan=%s SigPnd=%s ShdPnd=%s SigBlk=%s SigCgt=%s" %
                   (os.path.basename(task), st.get("Name"), st.get("State"), wchan,
                    st.get("SigPnd"), st.get("ShdPnd"), st.get("SigBlk"), st.get("SigCgt")))
    return "\n".join(out) or "  (no /proc state)"


PROTO = {"echo_server": Echo(), "http_server": Http(),
         "resp_server": Fixed(b"*1\r\n$4\r\nPING\r\n", b"+PONG\r\n")}


class Conn:
    def __init__(self, index, sock):
        self.index, self.sock = index, sock
        self.buf = bytearray()
        self.sent = self.done = 0
        self.req = b""
        self.outstanding = False
        self.keep_sending = index % 2 == 0
        self.inflight_at_signal = False
        self.inflight_done_at = None
        self.last_done_at = None
        self.closed_at = None


def run(name, exe, grace, sig, threads):
    what = "%s --threads %d (%s), %s" % (name, threads, backend, signal.Signals(sig).name)
    proto = PROTO[name]
    err = tempfile.TemporaryFile()
    srv = subprocess.Popen([exe, "--port", "0", "--backend", backend, "--threads", str(threads)],
                           stdout=subprocess.PIPE, stderr=err, text=True)
    fails = []
    conns = []
    sel = selectors.DefaultSelector()
    st = {"t0": None, "before": 0, "out": None}

    def exercise():
        line = srv.stdout.readline()
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        if not m:
            return ["%s: no listening line: %r" % (what, line)]
        port = int(m.group(1))

        def send_next(c, now):
            c.req = proto.request(c)
            try:
                c.sock.send(c.req)  # small: fits the socket buffer at once
            except OSError:
                return  # closed by the server: its recv side will say so
            c.sent += 1
            c.outstanding = True

        def on_readable(c, now, signalled):
            try:
                data = c.sock.recv(65536)
            except BlockingIOError:
                return
            except ConnectionResetError:
                data = b""
            if not data:
                c.closed_at = now
                sel.unregister(c.sock)
                if c.inflight_at_signal and c.inflight_done_at is None:
                    fails.append("%s: connection %d closed before the response in flight at "
                                 "the signal" % (what, c.index))
                return
            c.buf += data
            while True:
                n = proto.complete(c)
                if n < 0:
                    fails.append("%s: connection %d: malformed response %r" %
                                 (what, c.index, bytes(c.buf[:80])))
                    c.buf.clear()
                    return
                if n == 0 or not c.outstanding:
                    if n > 0 and not c.outstanding:
                        fails.append("%s: connection %d: a response nobody asked for" %
                                     (what, c.index))
                        c.buf.clear()
                    return
                del c.buf[:n]
                c.outstanding = False
                c.done += 1
                c.last_done_at = now
                if c.inflight_at_signal and c.inflight_done_at is None:
                    c.inflight_done_at = now
                if not signalled or c.keep_sending:
                    send_next(c, now)

        # Connect in batches (the listen backlog is finite), each
        # connection's first request at once.
        t_start = time.monotonic()
        for i in range(N):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.setblocking(False)
            c = Conn(i, s)
            conns.append(c)
            sel.register(s, selectors.EVENT_READ, c)
            send_next(c, time.monotonic())
            if i % 100 == 99:
                for key, _ in sel.select(0):
                    on_readable(key.data, time.monotonic(), False)

        # Busy until every connection has been answered, then 0.3 s more.
        answered_at = None
        deadline = time.monotonic() + 30
        while True:
            now = time.monotonic()
            if answered_at is None and all(c.done > 0 for c in conns):
                answered_at = now
            if answered_at is not None and now - answered_at >= 0.3:
                break
            if now > deadline or srv.poll() is not None:
                return fails + ["%s: only %d of %d connections answered before the signal"
                                " (server %s)" % (what, sum(c.done > 0 for c in conns), N,
                                                  "exited" if srv.poll() is not None
                                                  else "running")]
            for key, _ in sel.select(0.05):
                on_readable(key.data, time.monotonic(), False)
        before = sum(c.done for c in conns)
        if fails:
            return fails

        srv.send_signal(sig)
        t0 = time.monotonic()
        st["t0"], st["before"] = t0, before
        inflight = 0
        for c in conns:
            c.inflight_at_signal = c.outstanding
            inflight += c.outstanding
        end = t0 + grace + SLACK
        while sel.get_map() and time.monotonic() < end:
            for key, _ in sel.select(0.05):
                on_readable(key.data, time.monotonic(), True)
        open_left = len(sel.get_map())
        if open_left:
            fails.append("%s: %d connections still open %.1f s after the signal" %
                         (what, open_left, grace + SLACK))
        waits = [c.inflight_done_at - t0 for c in conns if c.inflight_done_at is not None]
        slowest = max(waits) if waits else 0.0
        if slowest > grace:
            fails.append("%s: %d responses in flight at the signal came after the %.1f s grace "
                         "period (the last %.2f s after the signal)" %
                         (what, sum(w > grace for w in waits), grace, slowest))
        answering = max((c.last_done_at for c in conns if c.last_done_at is not None),
                        default=t0) - t0
        if answering < grace / 2:
            fails.append("%s: the last response came %.2f s after the signal: the busy "
                         "connections were not served through the %.1f s grace period" %
                         (what, answering, grace))
        lost = sum(c.inflight_at_signal and c.inflight_done_at is None for c in conns)
        if lost and not any("closed before the response" in f for f in fails):
            fails.append("%s: %d responses in flight at the signal never came" % (what, lost))
        try:
            rc = srv.wait(timeout=max(0.5, end - time.monotonic()) + 2)
        except subprocess.TimeoutExpired:
            return fails + ["%s: still running %.1f s after the signal" % (what, grace + SLACK)]
        t_exit = time.monotonic() - t0
        out = st["out"] = srv.stdout.read()
        err.seek(0)
        errtext = err.read().decode(errors="replace")
        if rc != 0:
            fails.append("%s: exit %d" % (what, rc))
        if "%s, closing" % signal.Signals(sig).name not in line + out:
            fails.append("%s: no \"%s, closing\" line: %r" %
                         (what, signal.Signals(sig).name, line + out))
        if re.search(r"Sanitizer|runtime error|LeakSanitizer", errtext):
            fails.append("%s: a sanitizer report:\n%s" % (what, errtext[:4000]))
        last_close = max(c.closed_at for c in conns if c.closed_at is not None) - t0 \
            if any(c.closed_at is not None for c in conns) else float("nan")
        after = sum(c.done for c in conns) - before
        print("%s: %d connections, %d responses before the signal (%.1f s), %d in flight at it "
              "(all answered, the last %.3f s after it), %d more after it (the last %.2f s after "
              "it); all closed %.2f s after it, exit %d at %.2f s" %
              (what, N, before, t0 - t_start, inflight, slowest, after, answering, last_close, rc,
               t_exit))
        return fails

    def diagnose():
        """What the client saw after the signal, the server's state and output."""
        now, t0 = time.monotonic(), st["t0"]
        lines = []
        if t0 is None:
            lines.append("no signal sent")
        else:
            closed = sorted(c.closed_at - t0 for c in conns if c.closed_at is not None)
            last = max((c.last_done_at for c in conns if c.last_done_at is not None), default=t0)
            lines.append("%.2f s since the signal: %d of %d connections closed (the first %s s, "
                         "the last %s s after it); %d responses after it (the last %.2f s after "
                         "it); %d responses in flight at it not come" %
                         (now - t0, len(closed), len(conns),
                          "%.2f" % closed[0] if closed else "-",
                          "%.2f" % closed[-1] if closed else "-",
                          sum(c.done for c in conns) - st["before"], last - t0,
                          sum(c.inflight_at_signal and c.inflight_done_at is None
                              for c in conns)))
        if srv.poll() is None:
            lines.append("server still running; its threads:\n" + proc_state(srv.pid))
            srv.kill()
            srv.wait()
        else:
            lines.append("server exited %d" % srv.returncode)
        out = st["out"] if st["out"] is not None else srv.stdout.read()
        err.seek(0)
        errtext = err.read().decode(errors="replace")
        lines.append("server stdout after its first line: %r" % out[-2000:])
        lines.append("server stderr: %s" % (errtext[-3000:] or "(empty)"))
        return "%s: on failure:\n  %s" % (what, "\n  ".join(lines))

    try:
        fails = exercise()
        return fails, [diagnose()] if fails else []
    finally:
        for c in conns:
            c.sock.close()
        sel.close()
        if srv.poll() is None:
            srv.kill()
            srv.wait()
        err.close()


only = os.environ.get("SHUTDOWN_ONLY")
if only and only not in PROTO:
    print("SHUTDOWN_ONLY=%s: not one of %s" % (only, ", ".join(PROTO)))
    sys.exit(2)
fails, diags = [], []
for i, (name, exe, grace) in enumerate(servers):
    sig = signal.SIGINT if (i + backend_index) % 2 == 0 else signal.SIGTERM
    threads = 1 + (i + backend_index + 1) % 2
    if only and name != only:
        continue
    f, d = run(name, exe, grace, sig, threads)
    fails += f
    diags += d
for f in fails[:20]:
    print("FAIL: " + f)
for d in diags:
    print(d)
if fails:
    sys.exit(1)
print("ok")
