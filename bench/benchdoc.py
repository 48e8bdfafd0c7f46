"""What every bench/ driver shares: the machine and software it ran on, and its own
section of docs/BENCHMARKS.md (between `<!-- bench:NAME:start -->` and `:end -->`,
replaced if present, appended otherwise; the rest of the file stays)."""
import os
import platform
import re
import subprocess
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
DOC = os.path.join(REPO, "docs", "BENCHMARKS.md")


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def read(path, default=""):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def cmd_out(argv, timeout=10):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        return (r.stdout or r.stderr).strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine_info():
    cpuinfo = read("/proc/cpuinfo")
    model = next((l.split(":", 1)[1].strip() for l in cpuinfo.splitlines() if l.startswith("model name")), "unknown")
    mem_kb = next((int(l.split()[1]) for l in read("/proc/meminfo").splitlines() if l.startswith("MemTotal:")), 0)
    return {
        "nproc": cmd_out(["nproc"]) or str(len(os.sched_getaffinity(0))),
        "model": model,
        "mem_gib": mem_kb / 1024 / 1024,
        "kernel": platform.release(),
        "loadavg": " ".join(read("/proc/loadavg").split()[:3]),
    }


def machine_line(m):
    return f"{m['nproc']} CPUs (`nproc`), {m['model']}, {m['mem_gib']:.1f} GiB RAM, Linux {m['kernel']}; load average at start {m['loadavg']}"


def git_rev():
    rev = cmd_out(["git", "-C", REPO, "rev-parse", "--short", "HEAD"])
    if not rev or "fatal" in rev or " " in rev:
        return "no commit"
    if cmd_out(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"]):
        rev += " + uncommitted changes"
    return rev


def write_section(section, text):
    """Replaces `section` of docs/BENCHMARKS.md with `text`, or appends it."""
    start, end = f"<!-- bench:{section}:start -->", f"<!-- bench:{section}:end -->"
    own = f"{start}\n{text.rstrip()}\n{end}"
    old = read(DOC)
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if pattern.search(old):
        new = pattern.sub(lambda _: own, old, count=1)
    elif old.strip():
        new = old.rstrip("\n") + "\n\n" + own + "\n"
    else:
        new = "# Benchmarks\n\n" + own + "\n"
    os.makedirs(os.path.dirname(DOC), exist_ok=True)
    tmp = DOC + ".tmp"
    with open(tmp, "w") as f:
        f.write(new)
    os.replace(tmp, DOC)
