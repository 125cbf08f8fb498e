#!/usr/bin/env python3
"""scripts/bench-report on a made-up run: which goals it calls met, short, or met by the median
only, which notes it writes under them, and that it refuses a note pointing at a missing shared
note. Also checks that the committed bench/report-notes.json is well formed."""
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REPORT = os.path.join(ROOT, "scripts", "bench-report")
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


def comparison(name, ratio, low, high, goal):
    return {"name": name, "numerator": "ksvc@w", "denominator": "ref@w", "ratio": ratio, "ci_low": low, "ci_high": high,
            "p_value": 0.01, "metric": "cpu_us", "higher_is_better": False, "goal": goal, "group": "test", "met": ratio >= goal}


def value(name, v, low, high, bound):
    """A figure with a bound it must stay within (lower is better), like idle_conn_bytes_server."""
    return {"name": name, "kind": "value", "value": v, "ci_low": low, "ci_high": high, "unit": "B", "numerator": "ksvc@w",
            "denominator": None, "references": {"ref": 100.0}, "metric": "bytes", "higher_is_better": False, "goal": bound,
            "goal_op": "<=", "sample_valid": True, "served_all": True, "p_value": None, "group": "test", "met": v <= bound}


ALL = [comparison("t_met", 1.2, 1.15, 1.3, 1.1), comparison("t_median", 1.12, 0.9, 1.3, 1.1),
       comparison("t_short", 0.9, 0.8, 1.0, 1.1), comparison("t_short_too", 0.95, 0.9, 1.0, 1.1),
       value("t_value_met", 200, 190, 210, 256), value("t_value_median", 200, 190, 300, 256)]


def run(tmp, notes, comparisons=ALL):
    results = {"schema": 1, "generated_at": "2026-01-01T00:00:00+00:00", "mode": "quick", "command": "test",
               "machine": {"kernel": "test"}, "config": {"reps": 5}, "arms": {}, "samples": {}, "profiles": {},
               "comparisons": comparisons}
    paths = {k: os.path.join(tmp, k) for k in ("results.json", "notes.json", "benchmarks.md")}
    for name, data in (("results.json", results), ("notes.json", notes)):
        with open(paths[name], "w") as f:
            json.dump(data, f)
    r = subprocess.run([sys.executable, REPORT, "--results", paths["results.json"], "--doc", paths["benchmarks.md"],
                        "--notes", paths["notes.json"]], capture_output=True, text=True)
    doc = open(paths["benchmarks.md"]).read() if r.returncode == 0 else ""
    return r, doc


with tempfile.TemporaryDirectory() as tmp:
    notes = {"t_median": ["MEDIAN-NOTE"], "t_value_median": ["VALUE-NOTE"], "t_short": {"lead": "LEAD-ONE", "see": "shared:x"},
             "t_short_too": {"lead": "LEAD-TWO", "see": "shared:x"}, "t_met": ["MET-NOTE"], "shared:x": ["SHARED-NOTE"]}
    r, doc = run(tmp, notes)
    check(r.returncode == 0, f"bench-report failed: {r.stderr}")
    rows = {}  # the goals table comes first; the table of all comparisons repeats the names
    for line in doc.splitlines():
        if line.startswith("| `t_"):
            rows.setdefault(line.split("`")[1].join("``"), line)
    check(rows.get("`t_met`", "").rstrip().endswith("| met |"), "t_met is not plainly met: " + rows.get("`t_met`", "missing"))
    check("met by the median only" in rows.get("`t_median`", ""), "t_median is not met by the median only")
    check("**short**" in rows.get("`t_short`", ""), "t_short is not short")
    check(" met |" in rows.get("`t_value_met`", "") and "median" not in rows.get("`t_value_met`", ""),
          "t_value_met is not plainly met: " + rows.get("`t_value_met`", "missing"))
    check("met by the median only" in rows.get("`t_value_median`", ""), "t_value_median is not met by the median only")
    check("### `t_met`" not in doc and "MET-NOTE" not in doc, "a plainly met goal got a note")
    check("### `t_median`" in doc and "MEDIAN-NOTE" in doc and "VALUE-NOTE" in doc, "the note of a goal met by the median only is missing")
    check("LEAD-ONE" in doc and "LEAD-TWO" in doc, "a lead is missing")
    check(doc.count("SHARED-NOTE") == 1, "the shared note is not written exactly once")
    check(doc.find("LEAD-ONE") < doc.find("SHARED-NOTE") < doc.find("LEAD-TWO"), "the shared note is not under the first comparison naming it")

    r, doc = run(tmp, {}, ALL[:2])
    check("Every comparison with a goal met it in this run (some by the median only, below)." in doc,
          "a run whose goals are all met, one by the median only, does not say so")

    r, doc = run(tmp, {"t_short": {"lead": "L", "see": "shared:missing"}})
    check(r.returncode != 0 and "shared:missing" in r.stderr, f"a note pointing at a missing shared note was accepted: {r.returncode} {r.stderr}")

    r = subprocess.run([sys.executable, REPORT, "--results", os.path.join(tmp, "results.json"), "--doc", os.path.join(tmp, "b.md"),
                        "--notes", os.path.join(tmp, "no-such-notes.json")], capture_output=True, text=True)
    check(r.returncode != 0 and "no-such-notes.json" in r.stderr, f"a missing --notes file was accepted: {r.returncode} {r.stderr}")

with open(os.path.join(ROOT, "bench", "report-notes.json")) as f:
    notes = json.load(f)
for key, note in notes.items():
    if key.startswith("_"):
        continue
    if isinstance(note, dict):
        check(set(note) <= {"lead", "see"}, f"report-notes.json: {key}: unknown fields {set(note) - {'lead', 'see'}}")
        check(note.get("see") is None or note["see"] in notes, f"report-notes.json: {key} refers to missing {note.get('see')}")
    else:
        check(isinstance(note, str) or (isinstance(note, list) and all(isinstance(p, str) for p in note)),
              f"report-notes.json: {key} is neither text, paragraphs nor a lead")

for f in failures:
    print("FAIL:", f)
print(f"test_bench_report: {'failed' if failures else 'passed'}")
sys.exit(1 if failures else 0)
