#!/usr/bin/env python3
"""How far ahead ContainerMemoryOOMPredicted warns of fast leaks.

    hack/fast-leak-sweep.py RULES_FILE

For each time T from 1 h to 4 h, a straight-line leak that starts after an
hour of flat working set and reaches its memory limit T later, on two
containers (520 MiB of a 1792 MiB limit, 1500 MiB of 2 GiB), is evaluated
with promtool once a minute; it prints when the alert first fires, its lead
before the limit and whether that meets T/2 (shared/ALERTS.md). Needs
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
START = 60  # minutes of flat working set before the leak


def probe_file(rules, order, base, limit, slope, minutes):
    flat = f"{base}+0x{START - 1}"
    leak = f"{base + slope}+{slope}x{minutes - START}"
    sel = 'namespace="sweep",pod="p",container="c"'
    tests = "\n".join(
        f"""      - expr: count(ALERTS{{alertname="ContainerMemoryOOMPredicted",alertstate="firing"}}) or vector(0)
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
        values: '{flat} {leak}'
      - series: 'kube_pod_container_resource_limits{{job="kube-state-metrics",{sel},resource="memory",unit="byte"}}'
        values: '{limit}+0x{minutes}'
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


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    rules = os.path.abspath(sys.argv[1])
    promtool = os.environ.get("PROMTOOL", "promtool")
    order = group_eval_order(rules)
    print("| T | container | first firing after the leak starts | lead | T/2 | met |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for T in (60, 90, 120, 135, 150, 165, 180, 210, 240):
            for base_mib, limit_mib in ((520, 1792), (1500, 2048)):
                slope = (limit_mib - base_mib) * MiB // T
                cross = START + T
                path = os.path.join(tmp, f"p-{T}-{base_mib}.yaml")
                with open(path, "w") as f:
                    f.write(probe_file(rules, order, base_mib * MiB, limit_mib * MiB, slope, cross))
                first = first_firing(promtool, path)
                if first is None:
                    print(f"| {T // 60}h{T % 60:02d}m | {base_mib}/{limit_mib} MiB | never | none | {T / 2:.0f}m | no |")
                    continue
                lead = cross - first
                print(f"| {T // 60}h{T % 60:02d}m | {base_mib}/{limit_mib} MiB | {first - START}m | {lead}m | "
                      f"{T / 2:.0f}m | {'yes' if lead >= T / 2 else 'no'} |", flush=True)


if __name__ == "__main__":
    main()
