#!/usr/bin/env python3
"""check.py SERVER — drives ksvc-http-server as outside clients do: curl for what a browser or a
tool asks (files byte-exact, HEAD, types, keep-alive, If-Modified-Since, directories) and raw
sockets for pipelining and every hostile request the server must refuse (each with the right
status and nothing more), a client too slow with its headers (408), a server out of
descriptors (503), then SIGINT with a connection open and a clean exit. Exit 0 when everything holds, 1 otherwise."""
import calendar
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time

failures = []
# Upper bounds on how long the server may take scale with this (a sanitizer build is slower).
SLOW = float(os.environ.get("KSVC_CHECK_TIME_SCALE", "1"))


def check(ok, what):
    if not ok:
        failures.append(what)
        print(f"FAIL: {what}", file=sys.stderr)


def start(server, root, *flags):
    p = subprocess.Popen([server, "--root", root, "--port", "0", "--json", "--shards", "2", *flags],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    if not line:
        print("server did not start: " + p.stderr.read(), file=sys.stderr)
        sys.exit(1)
    return p, json.loads(line)["port"]


def curl(port, *args):
    r = subprocess.run(["curl", "-s", "--max-time", "10", *args], capture_output=True, timeout=30)
    return r.returncode, r.stdout


def url(port, path):
    return f"http://127.0.0.1:{port}{path}"


def raw(port, data, wait=5.0, until_close=True):
    """Sends `data` on a fresh connection; returns what came back until the server closed it
    (or `wait` seconds passed) and whether it closed."""
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(wait)
    if data:
        s.sendall(data)
    got, closed = b"", False
    deadline = time.time() + wait
    try:
        while time.time() < deadline:
            b = s.recv(65536)
            if not b:
                closed = True
                break
            got += b
            if not until_close and b"\r\n\r\n" in got:
                break
    except socket.timeout:
        pass
    s.close()
    return got, closed


def status_of(resp):
    try:
        return int(resp.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


def responses(data):
    """Splits a byte stream of responses (Content-Length framed) into (status, headers, body)."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.split(b"\r\n")
        headers = {}
        for h in lines[1:]:
            k, _, v = h.partition(b":")
            headers[k.strip().lower().decode()] = v.strip().decode()
        n = int(headers.get("content-length", "0"))
        out.append((status_of(lines[0]), headers, rest[:n]))
        data = rest[n:]
    return out


def main():
    server = sys.argv[1]
    with tempfile.TemporaryDirectory(prefix="ksvc-http-") as tmp:
        root = os.path.join(tmp, "root")
        os.makedirs(os.path.join(root, "docs"))
        os.makedirs(os.path.join(root, "plain"))
        files = {
            "hello.txt": b"hello, world\n",
            "index.html": b"<!DOCTYPE html><title>home</title>\n",
            "style.css": b"body{}\n",
            "one-k.bin": os.urandom(1024),
            "sixty-four-k.bin": os.urandom(64 * 1024),
            "big.dat": os.urandom(3 * 1024 * 1024 + 17),
            "empty.txt": b"",
            "docs/index.html": b"<h1>docs</h1>\n",
            "plain/a.txt": b"a\n",
            "plain/b.png": b"\x89PNG\r\n",
            "with space.txt": b"spaced\n",
        }
        for name, data in files.items():
            with open(os.path.join(root, name), "wb") as f:
                f.write(data)
        with open(os.path.join(tmp, "secret.txt"), "wb") as f:
            f.write(b"outside the root\n")
        os.symlink(os.path.join(tmp, "secret.txt"), os.path.join(root, "escape.txt"))  # absolute, out
        os.symlink("../secret.txt", os.path.join(root, "escape-relative.txt"))          # relative, out
        os.symlink("hello.txt", os.path.join(root, "inside.txt"))                       # stays inside
        long_ago = 1_000_000_000
        os.utime(os.path.join(root, "hello.txt"), (long_ago, long_ago))

        p, port = start(server, root, "--header-timeout", "2", "--index")
        try:
            # ---- curl: files, byte-exact ----
            for name, data in files.items():
                rc, body = curl(port, url(port, "/" + name.replace(" ", "%20")))
                check(rc == 0 and body == data, f"GET /{name}: {len(body)} bytes, want {len(data)} (curl {rc})")
            rc, body = curl(port, "-w", "%{http_code} %{content_type} %{num_connects}\n",
                            "-o", "/dev/null", url(port, "/hello.txt"), "-o", "/dev/null", url(port, "/style.css"),
                            "-o", "/dev/null", url(port, "/plain/b.png"))
            got = body.decode(errors="replace")
            check("200 text/plain; charset=utf-8 1" in got, f"Content-Type of .txt / first connect: {got!r}")
            check("200 text/css 0" in got, f"Content-Type of .css on the same connection (keep-alive): {got!r}")
            check("200 image/png 0" in got, f"Content-Type of .png on the same connection: {got!r}")
            # HEAD: the headers of a GET, no body.
            rc, head = curl(port, "-I", url(port, "/sixty-four-k.bin"))
            check(b"HTTP/1.1 200" in head and b"Content-Length: 65536" in head and b"Last-Modified: " in head,
                  f"HEAD: {head!r}")
            got, closed = raw(port, b"HEAD /one-k.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            check(got.endswith(b"\r\n\r\n") and b"Content-Length: 1024" in got and closed, f"HEAD has no body: {got!r}")
            # Date: the current time in IMF-fixdate, on every response; a thread formats it once a
            # second, so two requests 1.5 s apart must carry dates that far apart.
            def date_of(path):
                got, _ = raw(port, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                line = next((l for l in got.split(b"\r\n") if l.startswith(b"Date: ")), b"")
                try:
                    return calendar.timegm(time.strptime(line[6:].decode(), "%a, %d %b %Y %H:%M:%S GMT"))
                except ValueError:
                    check(False, f"Date header is not IMF-fixdate: {line!r}")
                    return None
            first = date_of(b"/one-k.bin")
            time.sleep(1.5)
            second, now = date_of(b"/no-such-file"), time.time()
            if first is not None and second is not None:
                check(abs(second - now) <= 2, f"Date is now: {second} against {now}")
                check(1 <= second - first <= 3 * SLOW, f"Date moves on: {first} then {second} 1.5 s later")
            # If-Modified-Since: 304 when not newer, 200 when it is.
            rc, head = curl(port, "-i", "-H", "If-Modified-Since: Sun, 09 Sep 2001 01:46:40 GMT", url(port, "/hello.txt"))
            check(head.startswith(b"HTTP/1.1 304") and b"Content-Length" not in head, f"304: {head[:80]!r}")
            rc, head = curl(port, "-i", "-H", "If-Modified-Since: Sat, 08 Sep 2001 00:00:00 GMT", url(port, "/hello.txt"))
            check(head.startswith(b"HTTP/1.1 200") and head.endswith(b"hello, world\n"), f"modified since: {head[:80]!r}")
            check(b"Last-Modified: Sun, 09 Sep 2001 01:46:40 GMT" in head, "Last-Modified is the file's mtime")
            # Directories: redirect, index.html, listing (--index).
            rc, head = curl(port, "-i", url(port, "/docs"))
            check(head.startswith(b"HTTP/1.1 301") and b"Location: /docs/" in head, f"/docs redirects: {head[:120]!r}")
            rc, body = curl(port, "-L", url(port, "/docs"))
            check(body == files["docs/index.html"], "/docs/ serves its index.html")
            rc, body = curl(port, url(port, "/"))
            check(body == files["index.html"], "/ serves index.html")
            rc, body = curl(port, url(port, "/plain/"))
            check(b'href="a.txt"' in body and b'href="b.png"' in body, f"listing of /plain/: {body[:200]!r}")
            # Symlinks: inside the root served, out of it never.
            rc, body = curl(port, url(port, "/inside.txt"))
            check(body == files["hello.txt"], "a symlink inside the root is served")
            for path in ["/escape.txt", "/escape-relative.txt"]:
                rc, head = curl(port, "-i", url(port, path))
                check(head.startswith(b"HTTP/1.1 404") and b"outside the root" not in head, f"{path}: {head[:60]!r}")
            rc, head = curl(port, "-i", url(port, "/missing.txt"))
            check(head.startswith(b"HTTP/1.1 404"), "a missing file is 404")

            # ---- raw sockets: pipelining ----
            req = b"".join(b"GET /%s HTTP/1.1\r\nHost: x\r\n\r\n" % n for n in [b"hello.txt", b"one-k.bin", b"style.css"])
            got, _ = raw(port, req + b"GET /empty.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            rs = responses(got)
            check([r[0] for r in rs] == [200, 200, 200, 200], f"pipelined statuses: {[r[0] for r in rs]}")
            if len(rs) == 4:
                check(rs[0][2] == files["hello.txt"] and rs[1][2] == files["one-k.bin"] and rs[2][2] == files["style.css"]
                      and rs[3][2] == b"", "pipelined bodies in order")
                check(rs[3][1].get("connection") == "close", "Connection: close is honoured")
            # HTTP/1.0: closes unless keep-alive is asked for.
            got, closed = raw(port, b"GET /hello.txt HTTP/1.0\r\n\r\n")
            check(status_of(got) == 200 and closed and got.endswith(files["hello.txt"]), f"HTTP/1.0: {got[:40]!r}")
            # (1 s whatever the build: the server closes an idle connection after its 2 s timeout.)
            got, closed = raw(port, b"GET /hello.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", wait=1)
            check(status_of(got) == 200 and not closed and b"Connection: keep-alive" in got and got.endswith(files["hello.txt"]),
                  f"HTTP/1.0 with keep-alive stays open: {got[:60]!r} closed={closed}")
            # Several Connection headers: their tokens add up, "close" wins.
            got, closed = raw(port, b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n", wait=1 * SLOW)
            check(status_of(got) == 200 and closed, f"Connection: close then keep-alive closes: closed={closed}")
            # Absolute-form targets are served (RFC 9112 3.2.2), the authority names no file.
            got, closed = raw(port, b"GET http://elsewhere.example/hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            check(status_of(got) == 200 and got.endswith(files["hello.txt"]), f"absolute-form: {got[:40]!r}")
            got, closed = raw(port, b"GET HTTP://x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            check(status_of(got) == 200 and got.endswith(files["index.html"]), f"absolute-form, no path: {got[:40]!r}")
            # Empty lines before a request line are ignored, between pipelined requests too.
            got, closed = raw(port, b"\r\n\r\nGET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n\r\nGET /style.css HTTP/1.1\r\nHost: x\r\n"
                                    b"Connection: close\r\n\r\n")
            rs = responses(got)
            check([r[0] for r in rs] == [200, 200] and closed, f"leading empty lines: {[r[0] for r in rs]}")
            # A file named as a directory is not there; a directory redirect keeps the query.
            got, _ = raw(port, b"GET /hello.txt/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            check(status_of(got) == 404, f"/hello.txt/: {got[:40]!r}")
            got, _ = raw(port, b"GET /docs?v=2&x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            check(status_of(got) == 301 and b"Location: /docs/?v=2&x\r\n" in got, f"redirect with a query: {got[:120]!r}")
            # If-Modified-Since in the two obsolete forms a recipient must accept; a bad or a
            # future date is ignored (the file is sent).
            for d in [b"Sunday, 09-Sep-01 01:46:40 GMT", b"Sun Sep  9 01:46:40 2001"]:
                got, _ = raw(port, b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\nIf-Modified-Since: " + d + b"\r\n\r\n")
                check(status_of(got) == 304, f"If-Modified-Since {d!r}: {got[:40]!r}")
            for d in [b"yesterday", b"Fri, 01 Jan 2100 00:00:00 GMT"]:
                got, _ = raw(port, b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\nIf-Modified-Since: " + d + b"\r\n\r\n")
                check(status_of(got) == 200 and got.endswith(files["hello.txt"]), f"If-Modified-Since {d!r} ignored: {got[:40]!r}")
            # A refused HEAD gets the status and headers, no body.
            for data, want in [(b"HEAD /../secret.txt HTTP/1.1\r\nHost: x\r\n\r\n", 403),
                               (b"HEAD / HTTP/1.2\r\nHost: x\r\n\r\n", 505),
                               (b"HEAD / HTTP/1.1\nHost: x\n\n", 400)]:
                got, closed = raw(port, data)
                check(status_of(got) == want and got.endswith(b"\r\n\r\n") and closed, f"refused HEAD has no body: {got!r}")
            # A refused upload: the client still sends its 512 KiB body, piece by piece, and then
            # reads. The server answers 413 and drains before closing; had it closed at once, the
            # body would meet a reset and the client's next send fail before it read the answer.
            up = socket.create_connection(("127.0.0.1", port))
            up.settimeout(10)
            try:
                up.sendall(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 524288\r\n\r\n")
                time.sleep(0.2)  # the answer is sent (and the socket half-closed) before the body comes
                for _ in range(64):
                    up.sendall(os.urandom(8 * 1024))
                    time.sleep(0.005)
                got = b""
                while True:
                    b = up.recv(65536)
                    if not b:
                        break
                    got += b
                check(status_of(got) == 413 and len(responses(got)) == 1, f"refused upload: {got[:40]!r}")
            except OSError as e:
                check(False, f"refused upload: the answer was lost ({e!r})")
            up.close()

            # ---- hostile requests: the status, then the connection is closed ----
            hostile = [
                (b"GARBAGE\r\n\r\n", 400, "a malformed request line"),
                (b"GET  /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n", 400, "two spaces in the request line"),
                (b"GET hello.txt HTTP/1.1\r\nHost: x\r\n\r\n", 400, "a target that is not a path"),
                (b"GET ftp://x/hello.txt HTTP/1.1\r\nHost: x\r\n\r\n", 400, "an absolute-form target that is not http"),
                (b"GET http://u@x/hello.txt HTTP/1.1\r\nHost: x\r\n\r\n", 400, "userinfo in an absolute-form target"),
                (b"GET /hello.txt HTTP/1.1\nHost: x\n\n", 400, "lines ending in a bare LF"),
                (b"GET /hello.txt HTTP/1.1\r\n\r\n", 400, "HTTP/1.1 without Host"),
                (b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400, "two Host headers"),
                (b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n", 400, "obs-fold"),
                (b"GET /hello.txt HTTP/1.1\r\nHost : x\r\n\r\n", 400, "whitespace before a colon"),
                (b"GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad percent-encoding"),
                (b"GET /a%00b HTTP/1.1\r\nHost: x\r\n\r\n", 400, "an encoded NUL"),
                (b"GET /hello.txt HTTP/2.0\r\nHost: x\r\n\r\n", 505, "HTTP/2.0"),
                (b"POST /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 405, "POST"),
                (b"DELETE /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n", 405, "DELETE"),
                (b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n", 501, "an unknown method"),
                (b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", 413, "a body"),
                (b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 413, "a chunked body"),
                (b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                 400, "Content-Length with Transfer-Encoding (smuggling)"),
                (b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400,
                 "two different Content-Lengths"),
                (b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"a" * 9000 + b"\r\n\r\n", 431, "headers over 8 KiB"),
                (b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(120)) + b"\r\n",
                 431, "too many headers"),
                (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "a request line over the limit"),
                (b"GET /../secret.txt HTTP/1.1\r\nHost: x\r\n\r\n", 403, ".. in the path"),
                (b"GET /docs/../../secret.txt HTTP/1.1\r\nHost: x\r\n\r\n", 403, "nested .."),
                (b"GET /%2e%2e/secret.txt HTTP/1.1\r\nHost: x\r\n\r\n", 403, "percent-encoded .."),
                (b"GET /docs%2f..%2f..%2fsecret.txt HTTP/1.1\r\nHost: x\r\n\r\n", 400, "an encoded slash"),
            ]
            for data, want, what in hostile:
                got, closed = raw(port, data)
                check(status_of(got) == want, f"{what}: got {got[:40]!r}, want {want}")
                check(b"outside the root" not in got, f"{what}: served a file outside the root")
                check(closed, f"{what}: the connection was not closed")
                if want == 405:
                    check(b"Allow: GET, HEAD" in got, f"{what}: no Allow header")
                check(len(responses(got)) == 1, f"{what}: more than one response")

            # A client that sends half its headers, then nothing: 408 and closed after 2 s.
            t0 = time.time()
            got, closed = raw(port, b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n", wait=8)
            took = time.time() - t0
            check(status_of(got) == 408 and closed, f"slow headers: {got[:40]!r} closed={closed}")
            check(1.5 <= took <= 6 * SLOW, f"slow headers answered after {took:.1f} s (timeout 2 s)")
            # An idle keep-alive connection is closed silently after the same time.
            got, closed = raw(port, b"", wait=8)
            check(got == b"" and closed, f"idle connection: {got[:40]!r} closed={closed}")

            # Out of descriptors: a connection is open, then the server's RLIMIT_NOFILE is cut to
            # its lowest free descriptor, so its next open fails with EMFILE. The answer is 503
            # (the server's trouble, never a 404 a client might cache) and the connection closes;
            # with the limit back, the same file is served.
            s = socket.create_connection(("127.0.0.1", port))
            s.settimeout(5)
            s.sendall(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n")
            check(s.recv(4096).startswith(b"HTTP/1.1 200"), "a response before the descriptor limit")
            limits = resource.prlimit(p.pid, resource.RLIMIT_NOFILE)

            def lowest_free():
                fds = {int(n) for n in os.listdir(f"/proc/{p.pid}/fd")}
                return next(n for n in range(len(fds) + 1) if n not in fds)

            # The first answer's file may still be closing: cut again until the lowest free
            # descriptor holds still, so no free one is left under the limit.
            cut = None
            for _ in range(50):
                now = lowest_free()
                if now == cut:
                    break
                cut = now
                resource.prlimit(p.pid, resource.RLIMIT_NOFILE, (cut, limits[1]))
                time.sleep(0.05)
            try:
                s.sendall(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n")
                got = b""
                try:
                    while b := s.recv(4096):
                        got += b
                except socket.timeout:
                    pass
                check(status_of(got) == 503, f"out of descriptors: got {got[:40]!r}, want 503")
                check(b"hello, world" not in got, "out of descriptors: the file was served anyway")
            finally:
                resource.prlimit(p.pid, resource.RLIMIT_NOFILE, limits)
                s.close()
            rc, body = curl(port, url(port, "/hello.txt"))
            check(rc == 0 and body == files["hello.txt"], f"GET after the descriptor limit was lifted (curl {rc})")

            # SIGINT with a connection open and one stalled mid-body (its client reads nothing): a
            # clean exit all the same, not a server stuck waiting for the socket to drain.
            stalled = socket.create_connection(("127.0.0.1", port))
            stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            stalled.sendall(b"GET /big.dat HTTP/1.1\r\nHost: x\r\n\r\n" * 8)
            time.sleep(0.3)
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n")
            s.settimeout(5)
            check(s.recv(4096).startswith(b"HTTP/1.1 200"), "a response before shutdown")
            p.send_signal(signal.SIGINT)
            t_stop = time.time()
            out, err = p.communicate(timeout=20)
            check(time.time() - t_stop < 5 * SLOW, f"shutdown took {time.time() - t_stop:.1f} s with a stalled client")
            s.close()
            stalled.close()
            check(p.returncode == 0, f"exit status after SIGINT: {p.returncode}; stderr: {err.strip()}")
            last = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
            check(last.get("phase") == "exit" and last.get("requests", 0) > 40, f"exit counters: {last}")
            check(last.get("timeouts") == 1, f"one header timeout counted: {last}")
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()

        # Bodies through a pipe with splice (--body splice), byte-exact; and without --index a
        # directory with no index.html is 403.
        p, port = start(server, root, "--body", "splice")
        try:
            for name in ["one-k.bin", "sixty-four-k.bin", "big.dat", "empty.txt", "docs/index.html"]:
                rc, body = curl(port, url(port, "/" + name))
                check(rc == 0 and body == files[name], f"--body splice: GET /{name}: {len(body)} bytes (curl {rc})")
            req = b"".join(b"GET /%s HTTP/1.1\r\nHost: x\r\n\r\n" % n for n in [b"big.dat", b"hello.txt", b"sixty-four-k.bin"])
            got, _ = raw(port, req + b"GET /one-k.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", wait=10)
            rs = responses(got)
            check([r[2] for r in rs] == [files["big.dat"], files["hello.txt"], files["sixty-four-k.bin"], files["one-k.bin"]],
                  f"--body splice: pipelined bodies ({[len(r[2]) for r in rs]})")
            rc, head = curl(port, "-i", url(port, "/plain/"))
            check(head.startswith(b"HTTP/1.1 403"), f"a directory without index.html and no --index: {head[:40]!r}")
            p.send_signal(signal.SIGINT)
            p.communicate(timeout=20)
            check(p.returncode == 0, f"--body splice: exit status {p.returncode}")
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()

        # One client that pipelines requests and reads nothing cannot take the shard's buffers:
        # one shard with 64 receive buffers; the stalled client asks for a 16 MiB file (its
        # answer fills the socket buffers at once) and then sends 96 more requests of 4 KiB. A
        # second client must still be served (an unbounded recv stream held all 64 buffers).
        with open(os.path.join(root, "huge.dat"), "wb") as f:
            f.write(os.urandom(16 << 20))
        p, port = start(server, root, "--buffers", "64", "--shards", "1")
        try:
            hog = socket.create_connection(("127.0.0.1", port))
            hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            hog.setblocking(False)
            pending = (b"GET /huge.dat HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 4000 + b"\r\n\r\n") * 96
            t_end = time.time() + 2
            while pending and time.time() < t_end:  # as much as the socket takes
                try:
                    pending = pending[hog.send(pending):]
                except BlockingIOError:
                    time.sleep(0.01)
            time.sleep(0.3)
            rc, body = curl(port, "--max-time", "3", url(port, "/hello.txt"))
            check(rc == 0 and body == files["hello.txt"], f"served beside a stalled pipelining client (curl {rc})")
            hog.close()
            p.send_signal(signal.SIGINT)
            p.communicate(timeout=20)
            check(p.returncode == 0, f"exit status after the stalled client: {p.returncode}")
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()

        # Bad usage: a clear message, status 2.
        r = subprocess.run([server, "--port", "70000", "--root", root], capture_output=True, text=True)
        check(r.returncode == 2 and "above 65535" in r.stderr, f"bad --port: {r.returncode} {r.stderr!r}")
        r = subprocess.run([server], capture_output=True, text=True)
        check(r.returncode == 2 and "--root" in r.stderr, f"no --root: {r.returncode} {r.stderr!r}")
        r = subprocess.run([server, "--help"], capture_output=True, text=True)
        check(r.returncode == 0 and "Usage:" in r.stdout, "--help")
        r = subprocess.run([server, "--root", os.path.join(tmp, "nope")], capture_output=True, text=True)
        check(r.returncode == 1 and "nope" in r.stderr, f"missing root: {r.returncode} {r.stderr!r}")

    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr)
        return 1
    print("ksvc-http-server: every check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
