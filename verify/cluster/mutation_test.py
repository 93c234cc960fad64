"""Driver for mutation-test.sh (stdlib only). See mutation-test.sh for usage."""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed$")


def last_line(text):
    lines = [l for l in text.splitlines() if l.strip()]
    return lines[-1].strip() if lines else ""


def run_tier(here, dist, version, log_path, extra=()):
    t0 = time.time()
    p = subprocess.run(
        [os.path.join(here, "run.sh"), "--versions", version, "--dist", dist, *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    with open(log_path, "w") as f:
        f.write(p.stdout)
    return p.returncode, p.stdout, time.time() - t0


def mutate(text, case):
    if case.get("move_first_doc_to_end"):
        docs = re.split(r"(?m)^---\s*$", text)
        # docs[0] is the leading comment + first object
        first, rest = docs[0], docs[1:]
        if not rest:
            raise ValueError("only one document, nothing to move")
        return "---".join(rest).rstrip("\n") + "\n---\n" + first
    old, new = case["old"], case["new"]
    n = text.count(old)
    want = case.get("count", 1)
    if n != want:
        raise ValueError(f"'old' occurs {n} times in {case['file']}, expected {want}: {old!r}")
    return text.replace(old, new)


def run_version(a, good, cases, version):
    passed = failed = 0
    work = os.path.join(a.work, version)
    os.makedirs(work, exist_ok=True)
    if a.skip_good != "1":
        rc, out, dt = run_tier(a.here, good, version, os.path.join(work, "good.log"))
        summary = last_line(out)
        m = SUMMARY.match(summary)
        if rc == 0 and m and m.group(2) == "0" and int(m.group(1)) > 0:
            passed += 1
            print(f"PASS [{version}] good samples: run.sh exit 0, '{summary}' ({dt:.0f}s)")
        else:
            failed += 1
            print(f"FAIL [{version}] good samples: run.sh exit {rc}, last line '{summary}' ({dt:.0f}s); output:")
            print("    " + "\n    ".join(out.splitlines()[-40:]))

    for c in cases:
        name = c["name"]
        if c.get("versions") and version not in c["versions"]:
            print(f"n/a  [{version}] {name}: only observable on {', '.join(c['versions'])} ({c.get('why', '')})")
            continue
        dist = os.path.join(work, name)
        os.makedirs(dist)
        src = open(os.path.join(good, c["file"])).read()
        try:
            mutated = mutate(src, c)
        except ValueError as e:
            failed += 1
            print(f"FAIL [{version}] {name}: mutation does not apply: {e}")
            continue
        with open(os.path.join(dist, c["file"]), "w") as f:
            f.write(mutated)
        # a mutated set is one file: its "file" scenario equals the "dir" one
        rc, out, dt = run_tier(a.here, dist, version, os.path.join(work, name + ".log"), ("--only-files",))
        summary = last_line(out)
        m = SUMMARY.match(summary)
        problems = []
        if rc == 0:
            problems.append("run.sh exited 0 on a broken manifest")
        if not m:
            problems.append(f"last line is not 'N passed, M failed': {summary!r}")
        elif m.group(2) == "0":
            problems.append(f"summary reports no failure: {summary!r}")
        missing = [rx for rx in c["expect"] if not re.search(rx, out, re.I | re.M)]
        if missing:
            problems.append("output does not match " + ", ".join(repr(r) for r in missing))
        if problems:
            failed += 1
            print(f"FAIL [{version}] {name} ({dt:.0f}s): " + "; ".join(problems))
            print("    " + "\n    ".join(out.splitlines()[-25:]))
        else:
            passed += 1
            fails = [l.strip() for l in out.splitlines() if re.search(r"\bFAIL\b", l)]
            print(f"PASS [{version}] {name} ({dt:.0f}s): run.sh failed as expected, '{summary}'")
            for l in fails[:3]:
                print(f"    {l[:200]}")
    return passed, failed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--here", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--versions", required=True, help="space separated")
    ap.add_argument("--skip-good", default="0")
    ap.add_argument("--case", action="append", default=[])
    a = ap.parse_args()

    good = os.path.join(a.here, "samples", "good")
    spec = json.load(open(os.path.join(a.here, "mutations.json")))
    cases = spec["cases"]
    if a.case:
        unknown = set(a.case) - {c["name"] for c in cases}
        if unknown:
            print(f"unknown case(s): {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
        cases = [c for c in cases if c["name"] in a.case]

    passed = failed = 0
    for version in a.versions.split():
        p, f = run_version(a, good, cases, version)
        passed += p
        failed += f
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
