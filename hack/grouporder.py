"""The evaluation order of a rule file's groups, for hack/'s promtool test
generators and sweeps (python3, standard library only; a module, not a
script: import grouporder from a script in hack/).

promtool evaluates the groups of one instant in map order unless a unit test
file gives group_eval_order, so that a test reading a record of another
group passes or fails by chance. The order to give is the rule file's own
(rules.Groups, as `leakguard generate` writes it): a group reads only
records of its own or of an earlier group. It is read from the rule file
under test, so that it is written down once, in rules/catalog.go.
"""
import os
import re

# RULES_FILE is the shipped rule file, which rules/testdata's tests evaluate.
RULES_FILE = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                           "..", "deploy", "prometheus", "rules.yaml"))

# A group of the top-level groups list: "- name: <group>", at whatever
# indentation (a rule has no name key, so no rule line matches).
_GROUP = re.compile(r"^\s*- name:\s*(['\"]?)([^'\"\s]+)\1\s*$")


def group_names(rules_file=RULES_FILE):
    """The names of rules_file's groups, in the file's order. Fails, naming
    the file, when it holds no groups (not a rule file, or an empty one)."""
    names = []
    in_groups = False
    with open(rules_file, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if not line[0].isspace() and not line.startswith("-"):
                # A top-level key: groups, or another (a Mimir file's
                # namespace) whose lines are no groups.
                in_groups = line.startswith("groups:")
                continue
            m = _GROUP.match(line)
            if in_groups and m:
                names.append(m.group(2))
    if not names:
        raise SystemExit(f"{rules_file}: no rule groups found; is it a rule file (leakguard generate writes one)?")
    if len(set(names)) != len(names):
        raise SystemExit(f"{rules_file}: a group name appears twice in {names}")
    return names


def group_eval_order(rules_file=RULES_FILE):
    """The group_eval_order key of a promtool unit test file, every group of
    rules_file in its order, without a trailing newline."""
    return "\n".join(["group_eval_order:"] + [f"  - {name}" for name in group_names(rules_file)])
