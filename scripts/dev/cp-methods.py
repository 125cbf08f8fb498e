#!/usr/bin/env python3
"""Measures ksvc-cp's copy methods on this machine: the table `--method auto` follows
(docs/how-to/ksvc-cp.md). Each scenario copies the same data with every method, interleaved,
as whole programs (spawn to exit), into a fresh destination; the source is warm in the page cache
unless the scenario says cold. Prints a Markdown table of median MB/s and [min, max].

    scripts/dev/cp-methods.py --ksvc-cp build/release/examples/ksvc-cp [--rounds 5]
        [--disk-dir /var/tmp] [--tmpfs-dir /dev/shm] [--large-mib 1024] [--small-files 2000]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

METHODS = ["copy_file_range", "rw", "splice", "rw --direct"]


def make_large(path, mib):
    if os.path.exists(path) and os.path.getsize(path) == mib << 20:
        return
    with open(path, "wb") as f:
        block = os.urandom(1 << 20)
        for i in range(mib):
            f.write(block[i % 4096:] + block[: i % 4096])


def make_small_tree(path, count, size):
    if os.path.isdir(path) and len(os.listdir(path)) == count:
        return
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    for i in range(count):
        with open(os.path.join(path, f"f{i:05d}"), "wb") as f:
            f.write(os.urandom(size))


def warm(path):
    for root, _, files in os.walk(path) if os.path.isdir(path) else [(os.path.dirname(path), [], [os.path.basename(path)])]:
        for name in files:
            with open(os.path.join(root, name), "rb", buffering=0) as f:
                while f.read(1 << 22):
                    pass


def drop_caches():
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def total_bytes(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(r, n)) for r, _, fs in os.walk(path) for n in fs)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ksvc-cp", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--disk-dir", default="/var/tmp")
    ap.add_argument("--tmpfs-dir", default="/dev/shm")
    ap.add_argument("--large-mib", type=int, default=1024)
    ap.add_argument("--small-files", type=int, default=2000)
    ap.add_argument("--small-size", type=int, default=16384)
    a = ap.parse_args()
    disk = os.path.join(a.disk_dir, "ksvc-cp-methods")
    tmpfs = os.path.join(a.tmpfs_dir, "ksvc-cp-methods")
    os.makedirs(disk, exist_ok=True)
    os.makedirs(tmpfs, exist_ok=True)
    large_label = f"{a.large_mib} MiB file"
    small_label = f"{a.small_files} x {a.small_size // 1024} KiB files (-r)"
    scenarios = []  # (name, src, dst dir, cold)
    for where, d in (("disk", disk), ("tmpfs", tmpfs)):
        make_large(os.path.join(d, "large.bin"), a.large_mib)
        make_small_tree(os.path.join(d, "small"), a.small_files, a.small_size)
    scenarios += [
        (f"disk -> same disk, page cache, {large_label}", os.path.join(disk, "large.bin"), disk, False),
        (f"disk -> same disk, page cache, {small_label}", os.path.join(disk, "small"), disk, False),
        (f"disk -> same disk, cold cache, {large_label}", os.path.join(disk, "large.bin"), disk, True),
        (f"tmpfs -> disk, {large_label}", os.path.join(tmpfs, "large.bin"), disk, False),
        (f"tmpfs -> disk, {small_label}", os.path.join(tmpfs, "small"), disk, False),
        (f"disk -> tmpfs, page cache, {large_label}", os.path.join(disk, "large.bin"), tmpfs, False),
        (f"tmpfs -> tmpfs, {large_label}", os.path.join(tmpfs, "large.bin"), tmpfs, False),
    ]
    print("| scenario | " + " | ".join(METHODS) + " | auto (best of the first three) |")
    print("|---|" + "---|" * (len(METHODS) + 1))
    for name, src, dst_dir, cold in scenarios:
        if cold and not drop_caches():
            print(f"| {name} | (cannot drop caches: not root) |" + " |" * len(METHODS))
            continue
        dst = os.path.join(dst_dir, "copy-out")
        nbytes = total_bytes(src)
        rates = {m: [] for m in METHODS + ["auto"]}
        arms = METHODS + ["auto"]
        for rnd in range(a.rounds):
            for k in range(len(arms)):
                m = arms[(rnd + k) % len(arms)]
                if os.path.isdir(dst):
                    shutil.rmtree(dst)
                elif os.path.exists(dst):
                    os.unlink(dst)
                if cold:
                    drop_caches()
                else:
                    os.sync()
                    warm(src)
                t0 = time.monotonic()
                args = ["--method", "rw", "--direct"] if m == "rw --direct" else ["--method", m]
                r = subprocess.run([a.ksvc_cp, "-r", "--no-progress", *args, src, dst], capture_output=True, text=True)
                t1 = time.monotonic()
                if r.returncode != 0:
                    sys.exit(f"{name}: --method {m} failed: {r.stderr}")
                rates[m].append(nbytes / (t1 - t0) / 1e6)
        if os.path.isdir(dst):
            shutil.rmtree(dst)
        elif os.path.exists(dst):
            os.unlink(dst)
        cells = [f"{statistics.median(rates[m]):.0f} [{min(rates[m]):.0f}, {max(rates[m]):.0f}]" for m in METHODS]
        best = max(METHODS[:3], key=lambda m: statistics.median(rates[m]))
        auto = statistics.median(rates["auto"])
        print(f"| {name} | " + " | ".join(cells) + f" | {auto:.0f} (best: {best}) |", flush=True)


if __name__ == "__main__":
    main()
