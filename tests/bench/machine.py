"""The machine and its processes, read from /proc and resource: the facts printed at the top of a
benchmark (CPU, cores, kernel, socket buffer sysctls, SIPp version), the open-files limit, and a
process's VmRSS, CPU seconds and descendants.

Python 3 standard library only.
"""

import glob
import os
import platform
import resource
import subprocess

from system_lab import lab


def machine_facts():
    model = lab.harness.cpu_model()
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            mem = "%.1f GiB" % (kb / 1048576)
    except (OSError, ValueError, IndexError):
        pass
    load = "?"
    try:
        load = " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        pass
    sipp = "?"
    try:
        out = subprocess.run([lab.SIPP, "-v"], capture_output=True, text=True, timeout=5).stdout
        sipp = next((line.strip() for line in out.splitlines() if "SIPp" in line), "?")
    except (OSError, subprocess.SubprocessError):
        pass
    facts = {"nproc": os.cpu_count(), "cpu": model, "memory": mem, "loadavg at start": load,
             "kernel": platform.release(), "sipp": sipp, "build": lab.BUILD_DIR}
    for name in NET_SYSCTLS:
        facts[name] = sysctl(name)
    return facts


def sysctl(name):
    """A sysctl's value as text from /proc/sys ("?" when unreadable): net.core.rmem_max -> "4194304"."""
    try:
        with open("/proc/sys/" + name.replace(".", "/")) as f:
            return " ".join(f.read().split())
    except OSError:
        return "?"


NET_SYSCTLS = ("net.core.rmem_max", "net.core.wmem_max", "net.core.rmem_default", "net.core.wmem_default",
               "net.core.netdev_max_backlog")


def machine_line(facts):
    """One line for the top of the output: CPU model, cores, kernel, socket buffer limits."""
    return "machine: %s, %s cores, kernel %s, rmem_max %s, wmem_max %s (rmem_default %s)" % (
        facts.get("cpu"), facts.get("nproc"), facts.get("kernel"), facts.get("net.core.rmem_max"),
        facts.get("net.core.wmem_max"), facts.get("net.core.rmem_default"))


def raise_nofile(want=65536):
    """Raises RLIMIT_NOFILE (inherited by the NFs and SIPp) as far as the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def children_cpu():
    """CPU seconds of this process's finished children (the SIPp runs waited for)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def parse_proc_stat_cpu(text):
    """(cpus, idle, steal) from /proc/stat text: the number of cpuN lines, and in clock ticks
    summed over all CPUs the idle time (idle + iowait) and the steal (time a hypervisor gave this
    machine's runnable CPUs to another guest). Busy time is not taken from the user/system
    fields: those are sampled at the scheduler tick and miss much of a load made of short wake-ups
    (ours), whereas idle time is accounted at every idle entry and exit (NOHZ)."""
    cpus, idle, steal = 0, 0, 0
    for line in text.splitlines():
        f = line.split()
        if f and f[0] == "cpu":
            v = [int(x) for x in f[1:9]] + [0] * (8 - len(f[1:9]))
            idle, steal = v[3] + v[4], v[7]
        elif f and f[0].startswith("cpu") and f[0][3:].isdigit():
            cpus += 1
    return cpus, idle, steal


def host_cpu_seconds():
    """(busy, steal) CPU seconds of the whole machine since boot: busy = cpus x uptime - idle -
    steal (parse_proc_stat_cpu says why not user+system). A step's delta says whether the cores
    were saturated and whether a noisy neighbour took some."""
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    with open("/proc/stat") as f:
        cpus, idle, steal = parse_proc_stat_cpu(f.read())
    tck = float(os.sysconf("SC_CLK_TCK"))
    return cpus * uptime - idle / tck - steal / tck, steal / tck


def rss_kib(pid):
    """VmRSS of a process in KiB (from /proc/PID/status)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for pid %d" % pid)


def cpu_seconds(pid):
    """utime+stime of a process in seconds (from /proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_pids(pid):
    """pid and all its descendants (from /proc/*/stat)."""
    parent = {}
    for st in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(st) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            parent[int(st.split("/")[2])] = int(fields[1])
        except (OSError, ValueError, IndexError):
            continue
    out, todo = [pid], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        out += kids
        todo += kids
    return out
