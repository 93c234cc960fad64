"""The closing summary of a shell tier (verify/lib/harness.sh harness_summary).

Reads the tier's results file (JSON lines: {"scenario", "check", "object", "ok",
"message", "version"?} per check, {"note": ...} for a figure worth reporting) and prints
"TITLE: N checks in S s", the notes, each failure with the program's own words, and
"N passed, M failed" last. Exits 1 on any failure, or when no check recorded a result.
"""
import json
import sys


def where(row):
    return " ".join(x for x in (row.get("version"), row.get("scenario")) if x)


def main(title, path, seconds):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    notes = [r for r in rows if "note" in r]
    rows = [r for r in rows if "note" not in r]
    if not rows:
        rows.append({"ok": False, "scenario": "-", "check": "some check ran", "object": "-",
                     "message": "no check recorded a result"})
    failed = [r for r in rows if not r["ok"]]
    print()
    print(f"{title}: {len(rows)} checks in {seconds}s")
    if notes:
        print("REPORT:")
        for n in notes:
            print(f"  [{where(n)}] {n['note']}")
    if failed:
        print("FAILURES:")
        for r in failed:
            print(f"  [{where(r)}] {r['check']}: {r['object']}")
            for line in str(r.get("message", "")).rstrip().splitlines():
                print(f"      {line}")
    print(f"{len(rows) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
