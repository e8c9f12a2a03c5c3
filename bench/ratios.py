#!/usr/bin/env python3
"""ratios.py RESULTS_DIR -- Nova against its peers from one run of the peer harness.

Reads RESULTS_DIR/peers.tsv (written by the harness in ../shared/bench, which
bench/compare.sh runs), takes the last run of each tool and workload (warm page cache),
and prints one table: each issue target, Nova's figure, restic's and borg's, the ratio
(restic / Nova for times, so > 1 means Nova is faster) and whether the target is met.
"""
import csv
import os
import sys
from collections import defaultdict

res = sys.argv[1]
rows = list(csv.DictReader(open(os.path.join(res, "peers.tsv")), delimiter="\t"))
runs = defaultdict(lambda: defaultdict(dict))
for r in rows:
    runs[(r["tool"], r["workload"])][int(r["run"])][r["step"]] = r


def last(tool, wl):
    rr = runs.get((tool, wl))
    return rr[max(rr)] if rr else None


def wall(s, step):
    return float(s[step]["wall_s"]) if s and step in s and s[step]["wall_s"] != "-" else None


def num(s, step):
    return int(s[step]["bytes"]) if s and step in s else None


def peak_rss(s):
    vals = [int(r["maxrss_kb"]) for r in s.values() if r["maxrss_kb"] not in ("-", "")]
    return max(vals) / 1024 if vals else None


def w1_total(s):
    steps = [k for k in s if k.startswith("backup_v")]
    return sum(wall(s, k) for k in steps) if steps else None


def verify_step(s):
    return "check_read_data" if s and "check_read_data" in s else "check_verify_data"


out = []
P = out.append
P("| target | nova | restic | borg | ratio vs restic | goal | met |")
P("|---|---:|---:|---:|---:|---:|---|")


def line(name, nova, restic, borg, ratio, goal, met, unit=""):
    f = lambda v: "-" if v is None else (f"{v:.2f}{unit}" if isinstance(v, float) else f"{v}{unit}")
    P(f"| {name} | {f(nova)} | {f(restic)} | {f(borg)} | "
      f"{'-' if ratio is None else f'{ratio:.2f}x'} | {goal} | {'yes' if met else ('-' if met is None else 'NO')} |")


def speed(name, wl, getter, goal):
    n, r, b = (getter(last(t, wl)) if last(t, wl) else None for t in ("nova", "restic", "borg"))
    ratio = r / n if n and r else None
    line(name, n, r, b, ratio, f">= {goal}x", None if ratio is None else ratio >= goal, " s")


speed("W3 initial backup (1.36 GB)", "w3", lambda s: wall(s, "backup_original"), 2.5)
speed("W3 backup of the modified copy", "w3", lambda s: wall(s, "backup_modified"), 3)
n, r, b = (num(last(t, "w3"), "repo_bytes_added_by_modified") for t in ("nova", "restic", "borg"))
line("W3 bytes added by the modified copy", n, r, b, None, "<= restic",
     None if n is None or r is None else n <= r)
speed("W3 restore", "w3", lambda s: wall(s, "restore_modified"), 3)
speed("W2 initial backup (75k files)", "w2", lambda s: wall(s, "backup_initial"), 3)
speed("W2 re-backup, nothing changed", "w2", lambda s: wall(s, "backup_unchanged"), 8)
speed("W2 restore", "w2", lambda s: wall(s, "restore"), 4)
speed("W1 eight release snapshots", "w1", w1_total, 3)
for wl in ("w1", "w2", "w3"):
    speed(f"{wl.upper()} full verify", wl, lambda s: wall(s, verify_step(s)), 2)
for wl, step in (("w1", "repo_bytes_final"), ("w2", "repo_bytes_after_unchanged"),
                 ("w3", "repo_bytes_after_modified")):
    n, r, b = (num(last(t, wl), step) for t in ("nova", "restic", "borg"))
    smaller = min(v for v in (r, b) if v is not None) if (r or b) else None
    line(f"{wl.upper()} repository bytes", n, r, b, None, "<= smaller peer",
         None if n is None or smaller is None else n <= smaller)
for wl in ("w1", "w2", "w3"):
    n, r, b = (peak_rss(last(t, wl)) if last(t, wl) else None for t in ("nova", "restic", "borg"))
    line(f"{wl.upper()} peak memory (MiB)", n, r, b, None, "<= restic / 2",
         None if n is None or r is None else n <= r / 2)
print("\n".join(out))
