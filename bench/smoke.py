#!/usr/bin/env python3
"""Smoke runs of the benchmark binaries for `ctest -L bench`: every binary runs once with a tiny
workload and its output is checked for shape, never for speed.

    smoke.py echo <server> [server args...] -- <loadgen>
    smoke.py copy <scratch dir> <copy binary> [args...]
Exit 77 (skipped) when the kernel refuses io_uring.
"""
import json
import os
import subprocess
import sys


def io_uring_refused(stderr):
    return "io_uring" in stderr and ("Operation not permitted" in stderr or "Function not implemented" in stderr)


def echo(argv):
    sep = argv.index("--")
    server, loadgen = argv[:sep], argv[sep + 1]
    srv = subprocess.Popen(server + ["--conns", "4"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = srv.stdout.readline()
        if not line:
            err = srv.stderr.read()
            print(err)
            return 77 if io_uring_refused(err) else 1
        ready = json.loads(line)
        lg = subprocess.run([loadgen, "--port", str(ready["port"]), "--conns", "4", "--size", "100", "--depth", "2",
                             "--warmup", "0.02", "--duration", "0.1"], capture_output=True, text=True, timeout=60)
        print(lg.stdout, lg.stderr)
        if lg.returncode != 0:
            return 1
        res = json.loads(lg.stdout.strip().splitlines()[-1])
        done = json.loads(srv.stdout.readline())
        srv.wait(timeout=20)
        ok = res["messages"] > 0 and res["verify_failures"] == 0 and done["phase"] == "exit" and srv.returncode == 0
        return 0 if ok else 1
    finally:
        if srv.poll() is None:
            srv.kill()


def copy(argv):
    scratch, binary, args = argv[0], argv[1], argv[2:]
    os.makedirs(scratch, exist_ok=True)
    src = os.path.join(scratch, "smoke-src.bin")
    dst = os.path.join(scratch, "smoke-dst-%d.bin" % os.getpid())
    data = bytes((i * 131 + (i >> 12)) & 0xFF for i in range(3 << 20))  # 3 MiB: not a multiple of the chunk
    with open(src, "wb") as f:
        f.write(data)
    try:
        r = subprocess.run([binary, "--src", src, "--dst", dst, "--chunk", "65536", *args], capture_output=True, text=True, timeout=60)
        print(r.stdout, r.stderr)
        if r.returncode != 0:
            return 77 if io_uring_refused(r.stderr) else 1
        res = json.loads(r.stdout.strip().splitlines()[-1])
        with open(dst, "rb") as f:
            same = f.read() == data
        return 0 if same and res["bytes"] == len(data) else 1
    finally:
        for p in (dst,):
            if os.path.exists(p):
                os.unlink(p)


if __name__ == "__main__":
    cmd, rest = sys.argv[1], sys.argv[2:]
    sys.exit(echo(rest) if cmd == "echo" else copy(rest))
