#!/usr/bin/env python3
"""When the leak alerts fire on containers that leak from their own start,
and whether steep warm-ups of each length stay quiet.

    hack/from-start-sweep.py RULES_FILE

Leaks: a straight line from the container's start that reaches the memory
limit T later, for T from 45 m to 3 h, on two containers (200 MiB of a
1 GiB limit, 1500 MiB of 2 GiB): the minute after the start at which
ContainerMemoryLeak and ContainerMemoryOOMPredicted first fire, and the
lead before the limit (shared/ALERTS.md: before the limit whenever T is at
least maxWarmUp + 15m). Warm-ups: 200 MiB climbing to 1400 MiB (limit
2 GiB) over L minutes from the start, then flat, for 3 h: the first minute
either alert fires, or "quiet". Every container has
kube_pod_container_state_started; promtool evaluates every minute. Needs
promtool on PATH (or PROMTOOL) and python3 with the standard library only.
"""
import os
import re
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ beside the scripts
from grouporder import group_eval_order  # noqa: E402 (hack/ is on the path: the script's directory)

MiB = 1048576


def probe_file(rules, order, values, limit, minutes, alert):
    sel = 'namespace="sweep",pod="p",container="c"'
    tests = "\n".join(
        f"""      - expr: count(ALERTS{{alertname=~"{alert}",alertstate="firing"}}) or vector(0)
        eval_time: {m}m
        exp_samples:
          - labels: '{{}}'
            value: 0""" for m in range(minutes + 1))
    return f"""rule_files:
  - {rules}
evaluation_interval: 1m
{order}
tests:
  - interval: 1m
    input_series:
      - series: 'container_memory_working_set_bytes{{job="kubelet",metrics_path="/metrics/cadvisor",{sel},image="c:1",node="n",id="/kubepods/p/c"}}'
        values: '{values}'
      - series: 'kube_pod_container_resource_limits{{job="kube-state-metrics",{sel},resource="memory",unit="byte"}}'
        values: '{limit}+0x{minutes}'
      - series: 'kube_pod_container_state_started{{job="kube-state-metrics",{sel}}}'
        values: '0+0x{minutes}'
    promql_expr_test:
{tests}
"""


def first_firing(promtool, path):
    out = subprocess.run([promtool, "test", "rules", path], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True).stdout
    times = []
    for t in re.findall(r"expr: .*, time: ([0-9hms]+),", out):
        h = re.search(r"(\d+)h", t)
        m = re.search(r"(\d+)m", t)
        times.append((int(h.group(1)) if h else 0) * 60 + (int(m.group(1)) if m else 0))
    if not times and "SUCCESS" not in out:
        sys.exit(f"promtool failed on {path}:\n{out}")
    return min(times) if times else None


def hm(m):
    return f"{m // 60}h{m % 60:02d}m"


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    rules = os.path.abspath(sys.argv[1])
    promtool = os.environ.get("PROMTOOL", "promtool")
    order = group_eval_order(rules)
    with tempfile.TemporaryDirectory() as tmp:
        def first(name, values, limit, minutes, alert):
            path = os.path.join(tmp, name + ".yaml")
            with open(path, "w") as f:
                f.write(probe_file(rules, order, values, limit, minutes, alert))
            return first_firing(promtool, path)

        print("| T (limit after the start) | container | Leak first firing | OOMPredicted first firing | lead |")
        print("|---|---|---|---|---|")
        for T in (45, 60, 75, 90, 120, 180):
            for base_mib, limit_mib in ((200, 1024), (1500, 2048)):
                slope = (limit_mib - base_mib) * MiB // T
                values = f"{base_mib * MiB}+{slope}x{T - 1}"
                leak = first(f"leak-{T}-{base_mib}", values, limit_mib * MiB, T - 1, "ContainerMemoryLeak")
                oom = first(f"oom-{T}-{base_mib}", values, limit_mib * MiB, T - 1, "ContainerMemoryOOMPredicted")
                print(f"| {hm(T)} | {base_mib}/{limit_mib} MiB | {hm(leak) if leak is not None else 'never'} | "
                      f"{hm(oom) if oom is not None else 'never'} | {f'{T - oom}m' if oom is not None else 'none'} |", flush=True)
        print()
        print("| warm-up (200 to 1400 MiB over L, then flat) | first firing of Leak or OOMPredicted |")
        print("|---|---|")
        for L in (15, 30, 40, 45, 50, 55, 60):
            slope = 1200 * MiB // L
            values = f"{200 * MiB}+{slope}x{L} {200 * MiB + slope * L}+0x{180 - L - 1}"
            f = first(f"warm-{L}", values, 2048 * MiB, 180, "ContainerMemoryLeak|ContainerMemoryOOMPredicted")
            print(f"| {L}m | {'quiet for 3h' if f is None else hm(f)} |", flush=True)


if __name__ == "__main__":
    main()
