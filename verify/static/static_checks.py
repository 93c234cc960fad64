#!/usr/bin/env python3
"""Helpers of the static tier (called by run.sh, not meant to be run by hand).

Every result is one line on stdout starting with "PASS: " or "FAIL: "; run.sh
counts them. Informational lines start with two spaces or "NOTE: ".

Subcommands
  schema     strict JSON-schema validation of every object (kubernetes-validate's
             bundled "-strict" schemas, additionalProperties: false everywhere)
  selfcheck  writes the tiny self-check manifests, then validates them: a typo
             (readOnlyRootFileSystem) and a string for an int (runAsUser: "1001")
             must both be rejected, the corrected twin must be accepted
  uid-guard  the compensating check for the CKV_K8S_40 skip: every container's
             effective runAsUser is >= 10000, except containers of the core
             image, whose UID must be exactly the contract's (src/contract.json)
  checkov    reads checkov's JSON: every failed check is a FAIL line with the
             field to change; also audits .checkov.yaml and the self-check
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from typing import Any, Iterable

# ---------------------------------------------------------------- output ----

FAILED = 0


def ok(msg: str) -> None:
    print(f"PASS: {msg}")


def bad(msg: str) -> None:
    global FAILED
    FAILED += 1
    print(f"FAIL: {msg}")


def info(msg: str) -> None:
    print(f"  {msg}")


# ------------------------------------------------------------- manifests ----

def _strict_loader():
    """A SafeLoader that rejects duplicate mapping keys (the API server's strict
    field validation does; PyYAML would silently keep the last value)."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        pass

    def construct_mapping(loader, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, "duplicate key %r" % (key,), key_node.start_mark)
            seen.add(key)
        return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return StrictLoader


def load_objects(path: str) -> list[tuple[int, Any]]:
    """(document index, object) for every non-empty YAML document; Lists expanded."""
    import yaml

    with open(path, encoding="utf-8") as fh:
        docs = list(yaml.load_all(fh, Loader=_strict_loader()))
    out: list[tuple[int, Any]] = []
    for i, doc in enumerate(docs):
        if doc is None:
            continue
        if isinstance(doc, dict) and doc.get("kind") == "List" and isinstance(doc.get("items"), list):
            out.extend((i, item) for item in doc["items"])
        else:
            out.append((i, doc))
    return out


def ident(obj: Any) -> str:
    """kind/namespace/name ("-" for a cluster-scoped or missing namespace)."""
    if not isinstance(obj, dict):
        return "<not a mapping>"
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    return "%s/%s/%s" % (obj.get("kind", "?"), meta.get("namespace") or "-", meta.get("name", "?"))


# ---------------------------------------------------------------- schema ----

class Schemas:
    """Strict schemas of one exact Kubernetes minor version, from the kubernetes-validate wheel."""

    def __init__(self, minor: str) -> None:
        from kubernetes_validate import utils

        self.utils = utils
        self.minor = minor
        exact = [v for v in utils.all_versions() if utils.major_minor(v) == minor]
        if not exact:
            raise LookupError(
                "kubernetes-validate has no schema set for Kubernetes %s (it has %s)"
                % (minor, ", ".join(sorted({utils.major_minor(v) for v in utils.all_versions()}, key=lambda m: tuple(int(x) for x in m.split("."))))))
        self.full = exact[-1]
        self.dir = "kubernetes-json-schema/v%s-local-strict" % self.full
        self.defs = utils.schema_contents(self.dir + "/_definitions.json", self.full)
        self.cache: dict[str, Any] = {}

    def validator(self, obj: dict):
        import jsonschema
        from referencing import Registry, Resource

        api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", str(obj["apiVersion"]))
        fname = "%s/%s-%s.json" % (self.dir, str(obj["kind"]).lower(), api)
        if fname not in self.cache:
            try:
                schema = self.utils.schema_contents(fname, self.full)
            except FileNotFoundError:
                schema = None
            if schema is None:
                self.cache[fname] = None
            else:
                registry = Resource.from_contents(schema) @ Registry()
                registry = Resource.from_contents(self.defs) @ registry
                self.cache[fname] = jsonschema.validators.Draft202012Validator(schema, registry=registry)
        return self.cache[fname]

    def errors(self, obj: Any) -> list[str]:
        """Every schema error of obj, as 'path: message' (empty = valid)."""
        if not isinstance(obj, dict) or "apiVersion" not in obj or "kind" not in obj:
            return ["<root>: not a Kubernetes object (needs apiVersion and kind)"]
        v = self.validator(obj)
        if v is None:
            return ["<root>: no schema for %s %s in Kubernetes %s (unknown kind/apiVersion, or "
                    "removed in this version)" % (obj["apiVersion"], obj["kind"], self.minor)]
        out = []
        for e in sorted(v.iter_errors(obj), key=lambda e: [str(p) for p in e.absolute_path]):
            path = ".".join(str(p) for p in e.absolute_path) or "<root>"
            msg = e.message
            if len(msg) > 300:
                msg = msg[:300] + "..."
            out.append("%s: %s" % (path, msg))
        return out


def cmd_schema(args: argparse.Namespace) -> int:
    try:
        schemas = [Schemas(m) for m in args.versions.split(",")]
    except LookupError as e:
        bad("schema: %s" % e)
        return 1
    for s in schemas:
        info("k8s %s -> kubernetes-validate schema set v%s (strict)" % (s.minor, s.full))
    for path in args.files:
        try:
            objs = load_objects(path)
        except Exception as e:  # noqa: BLE001 - any parse failure is a test failure
            bad("schema: %s: YAML does not parse: %s" % (path, " ".join(str(e).split())))
            continue
        if not objs:
            bad("schema: %s: no Kubernetes objects in the file" % path)
            continue
        for _, obj in objs:
            for s in schemas:
                errs = s.errors(obj)
                label = "schema k8s %s strict: %s %s" % (s.minor, os.path.basename(path), ident(obj))
                if errs:
                    for err in errs:
                        bad("%s: %s" % (label, err))
                else:
                    ok(label)
    return 1 if FAILED else 0


# ------------------------------------------------------------- selfcheck ----

SELFCHECK_TEMPLATE = """\
# Generated by verify/static (self-check of the schema validator's strictness).
apiVersion: apps/v1
kind: Deployment
metadata:
  name: selfcheck
  namespace: static-selfcheck
spec:
  replicas: 1
  selector:
    matchLabels: {{app: selfcheck}}
  template:
    metadata:
      labels: {{app: selfcheck}}
    spec:
      containers:
        - name: app
          image: registry.invalid/selfcheck:1.0.0
          securityContext:
            {ro_field}: true
            runAsUser: {uid}
"""


def cmd_selfcheck(args: argparse.Namespace) -> int:
    os.makedirs(args.workdir, exist_ok=True)
    bad_path = os.path.join(args.workdir, "selfcheck-bad.yaml")
    good_path = os.path.join(args.workdir, "selfcheck-good.yaml")
    with open(bad_path, "w", encoding="utf-8") as fh:
        fh.write(SELFCHECK_TEMPLATE.format(ro_field="readOnlyRootFileSystem", uid='"1001"'))
    with open(good_path, "w", encoding="utf-8") as fh:
        fh.write(SELFCHECK_TEMPLATE.format(ro_field="readOnlyRootFilesystem", uid="1001"))
    try:
        schemas = [Schemas(m) for m in args.versions.split(",")]
    except LookupError as e:
        bad("selfcheck: %s" % e)
        return 1
    (_, bad_obj), = load_objects(bad_path)
    (_, good_obj), = load_objects(good_path)
    sc = "spec.template.spec.containers.0.securityContext"
    for s in schemas:
        errs = s.errors(bad_obj)
        typo = [e for e in errs if e.startswith(sc + ":") and "'readOnlyRootFileSystem'" in e]
        wrong_type = [e for e in errs if e.startswith(sc + ".runAsUser:") and "integer" in e]
        label = "selfcheck k8s %s:" % s.minor
        if typo:
            ok("%s unknown field securityContext.readOnlyRootFileSystem is rejected (%s)" % (label, typo[0]))
        else:
            bad("%s unknown field securityContext.readOnlyRootFileSystem was NOT rejected: the "
                "validator is not strict, its results cannot be trusted (errors: %s)" % (label, errs or "none"))
        if wrong_type:
            ok("%s string \"1001\" for integer runAsUser is rejected (%s)" % (label, wrong_type[0]))
        else:
            bad("%s string \"1001\" for integer runAsUser was NOT rejected (errors: %s)" % (label, errs or "none"))
        good_errs = s.errors(good_obj)
        if good_errs:
            bad("%s the corrected twin manifest is rejected, the validator rejects valid input: %s"
                % (label, good_errs))
        else:
            ok("%s the corrected twin manifest is accepted" % label)
    return 1 if FAILED else 0


# ------------------------------------------------------------- uid guard ----

HIGH_UID = 10000


def pod_specs(obj: dict) -> Iterable[dict]:
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if kind == "Pod":
        yield spec
    elif kind == "CronJob":
        yield (((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}).get("spec") or {}
    elif isinstance(spec.get("template"), dict):
        yield spec["template"].get("spec") or {}


def image_name(image: Any) -> str:
    """'reg:5000/stepflow/stepflow-core:0.11.1@sha256:..' -> 'stepflow-core'."""
    ref = str(image or "").split("@", 1)[0]
    last = ref.rsplit("/", 1)[-1]
    return last.split(":", 1)[0]


def cmd_uid_guard(args: argparse.Namespace) -> int:
    with open(args.contract, encoding="utf-8") as fh:
        contract = json.load(fh)
    core = contract["components"]["core"]
    core_image, core_uid = core["image"], int(core["uid"])
    info("contract: the %r image runs as UID %d (below %d, the reason CKV_K8S_40 is skipped); "
         "every other container must run as UID >= %d" % (core_image, core_uid, HIGH_UID, HIGH_UID))
    seen = 0
    for path in args.files:
        for _, obj in load_objects(path):
            if not isinstance(obj, dict):
                continue
            for pspec in pod_specs(obj):
                pod_uid = (pspec.get("securityContext") or {}).get("runAsUser")
                for group in ("initContainers", "containers", "ephemeralContainers"):
                    for c in pspec.get(group) or []:
                        seen += 1
                        uid = (c.get("securityContext") or {}).get("runAsUser", pod_uid)
                        img = image_name(c.get("image"))
                        label = "uid-guard: %s %s %s %r (%s)" % (
                            os.path.basename(path), ident(obj), group[:-1], c.get("name"), img)
                        if not isinstance(uid, int) or isinstance(uid, bool):
                            bad("%s: no numeric runAsUser (container or pod securityContext) - set it explicitly"
                                % label)
                        elif img == core_image:
                            if uid == core_uid:
                                ok("%s runs as the core image's contract UID %d" % (label, uid))
                            else:
                                bad("%s runs as UID %d, the contract says the core image runs as %d"
                                    % (label, uid, core_uid))
                        elif uid >= HIGH_UID:
                            ok("%s runs as UID %d (>= %d)" % (label, uid, HIGH_UID))
                        else:
                            bad("%s runs as UID %d < %d; only the core image may (CKV_K8S_40 is skipped "
                                "for that reason alone)" % (label, uid, HIGH_UID))
    if seen == 0:
        bad("uid-guard: no containers found in %s" % ", ".join(args.files))
    return 1 if FAILED else 0


# --------------------------------------------------------------- checkov ----

# What to change in the manifests (cdk8s constructs) for the checks a pod
# workload can fail. Shown next to each failure.
FIX = {
    "CKV_K8S_8": "add containers[].livenessProbe",
    "CKV_K8S_9": "add containers[].readinessProbe",
    "CKV_K8S_10": "set containers[].resources.requests.cpu",
    "CKV_K8S_11": "set containers[].resources.limits.cpu",
    "CKV_K8S_12": "set containers[].resources.requests.memory",
    "CKV_K8S_13": "set containers[].resources.limits.memory",
    "CKV_K8S_14": "containers[].image: use a fixed tag (not ':latest', not empty)",
    "CKV_K8S_15": "set imagePullPolicy: Always on every container AND initContainer (or pin images by digest)",
    "CKV_K8S_16": "containers[].securityContext.privileged: false (or drop it)",
    "CKV_K8S_17": "remove spec.hostPID",
    "CKV_K8S_18": "remove spec.hostIPC",
    "CKV_K8S_19": "remove spec.hostNetwork",
    "CKV_K8S_20": "set containers[].securityContext.allowPrivilegeEscalation: false",
    "CKV_K8S_21": "set metadata.namespace to the stepflow namespace (never 'default' / empty)",
    "CKV_K8S_22": "set containers[].securityContext.readOnlyRootFilesystem: true",
    "CKV_K8S_23": "set securityContext.runAsNonRoot: true (pod and/or container)",
    "CKV_K8S_25": "remove containers[].securityContext.capabilities.add",
    "CKV_K8S_26": "remove containers[].ports[].hostPort",
    "CKV_K8S_28": "containers[].securityContext.capabilities.drop: [ALL] (covers NET_RAW)",
    "CKV_K8S_29": "set spec.template.spec.securityContext",
    "CKV_K8S_30": "set containers[].securityContext",
    "CKV_K8S_31": "set securityContext.seccompProfile.type: RuntimeDefault",
    "CKV_K8S_35": "mount the Secret as a volume instead of env[].valueFrom.secretKeyRef / envFrom.secretRef",
    "CKV_K8S_37": "containers[].securityContext.capabilities.drop: [ALL]",
    "CKV_K8S_38": "set spec.template.spec.automountServiceAccountToken: false",
    "CKV_K8S_40": "containers[].securityContext.runAsUser >= 10000",
    "CKV_K8S_41": "do not use the 'default' ServiceAccount (set automountServiceAccountToken: false on it)",
    "CKV_K8S_43": "containers[].image: reference by digest (@sha256:...)",
    "CKV2_K8S_6": "add a NetworkPolicy whose podSelector matches the pod's labels",
}

CHECK_ID = re.compile(r"^CKV2?_K8S_[0-9]+$")


def read_checkov_json(path: str) -> list[dict]:
    """checkov prints one JSON object per report (or a list of them); accept all shapes."""
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    dec = json.JSONDecoder()
    i, reports = 0, []
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            break
        obj, i = dec.raw_decode(text, i)
        reports.extend(obj if isinstance(obj, list) else [obj])
    return reports


def results(reports: list[dict], key: str) -> list[dict]:
    return [r for rep in reports for r in (rep.get("results") or {}).get(key) or []]


def parse_skip_file(path: str) -> tuple[dict[str, str], list[str]]:
    """.checkov.yaml -> ({check id: reason}, [problems]). Reasons are same-line comments."""
    import yaml

    problems: list[str] = []
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        return {}, ["does not parse as YAML: %s" % e]
    if not isinstance(data, dict):
        return {}, ["top level must be a mapping"]
    extra = sorted(set(data) - {"skip-check"})
    if extra:
        problems.append("only 'skip-check' is allowed, found %s (other keys could widen or hide "
                        "results beyond a reasoned check id)" % extra)
    ids = data.get("skip-check") or []
    if not isinstance(ids, list):
        return {}, problems + ["skip-check must be a block list, one '- CKV_...  # reason' per line"]
    reasons: dict[str, str] = {}
    line_re = re.compile(r"^\s*-\s*['\"]?(?P<id>[A-Za-z0-9_]+)['\"]?\s*(?:#\s*(?P<why>.*?))?\s*$")
    for line in text.splitlines():
        m = line_re.match(line)
        if m and m.group("id") in ids:
            reasons[m.group("id")] = (m.group("why") or "").strip()
    for cid in ids:
        cid = str(cid)
        if not CHECK_ID.match(cid):
            problems.append("%r is not a Kubernetes check id (CKV_K8S_n / CKV2_K8S_n); severities or "
                            "wildcards are not allowed" % cid)
        elif cid not in reasons:
            problems.append("%s is not on a line of its own ('- %s  # reason')" % (cid, cid))
        elif len(reasons[cid]) < 20:
            problems.append("%s has no reason (a '# ...' comment of at least 20 characters on the same line)"
                            % cid)
    return {str(c): reasons.get(str(c), "") for c in ids}, problems


def where(r: dict, root: str) -> str:
    lines = r.get("file_line_range") or ["?", "?"]
    path = os.path.join(root, (r.get("file_path") or "?").lstrip("/"))
    return "%s:%s-%s" % (path, lines[0], lines[1])


def cmd_checkov(args: argparse.Namespace) -> int:
    # 1. the committed skip list
    skips: dict[str, str] = {}
    if os.path.exists(args.skip_file):
        skips, problems = parse_skip_file(args.skip_file)
        for p in problems:
            bad("checkov skip list %s: %s" % (args.skip_file, p))
        if not problems:
            ok("checkov skip list %s: %d skip(s), each with its reason" % (args.skip_file, len(skips)))
        for cid, why in skips.items():
            info("skip %s  # %s" % (cid, why or "<no reason>"))
    else:
        ok("checkov skip list: %s absent, nothing skipped" % args.skip_file)

    # 2. the run on dist/ with the skip list
    main = read_checkov_json(args.main_json)
    if not main:
        bad("checkov: no report produced on %s" % args.dist)
        return 1
    summ = [rep.get("summary") or {} for rep in main]
    passed = sum(s.get("passed", 0) for s in summ)
    failed_n = sum(s.get("failed", 0) for s in summ)
    parse_errs = sum(s.get("parsing_errors", 0) for s in summ)
    resources = sum(s.get("resource_count", 0) for s in summ)
    versions = {s.get("checkov_version") for s in summ}
    info("checkov %s on %s: %d passed, %d failed, %d resources, %d parsing errors"
         % ("/".join(sorted(str(v) for v in versions)), args.dist, passed, failed_n, resources, parse_errs))
    if args.expect_version and versions != {args.expect_version}:
        bad("checkov: ran version %s, pinned %s" % (versions, args.expect_version))
    if parse_errs:
        for p in results(main, "parsing_errors"):
            bad("checkov: could not parse %s" % p)
        if not results(main, "parsing_errors"):
            bad("checkov: %d parsing error(s)" % parse_errs)
    if resources == 0 or passed + failed_n == 0:
        bad("checkov: scanned no Kubernetes resource in %s (nothing was checked)" % args.dist)
    for r in sorted(results(main, "failed_checks"), key=lambda r: (r["check_id"], r.get("resource", ""))):
        hint = FIX.get(r["check_id"], "see the check's policy")
        keys = [k for k in (r.get("check_result") or {}).get("evaluated_keys") or [] if isinstance(k, str)]
        at = " [first offending field: %s]" % ", ".join(keys) if keys else ""
        bad("checkov %s \"%s\": %s (%s)%s -> %s"
            % (r["check_id"], r.get("check_name"), r.get("resource"), where(r, args.dist), at, hint))
    inline = results(main, "skipped_checks")
    for r in inline:
        bad("checkov %s skipped for %s outside .checkov.yaml (inline annotation?): %s"
            % (r["check_id"], r.get("resource"), (r.get("check_result") or {}).get("suppress_comment")))
    if failed_n == 0 and resources and passed and not inline:
        ok("checkov: no failed check on %s (%d checks passed on %d resources)" % (args.dist, passed, resources))

    # 3. audit run: the skipped checks and the self-check, without the skip list
    audit = read_checkov_json(args.audit_json)
    afail = results(audit, "failed_checks")
    apass = results(audit, "passed_checks")
    in_dist = [r for r in afail if (r.get("file_path") or "").startswith("/dist/")]
    in_self = [r for r in afail if (r.get("file_path") or "").startswith("/selfcheck/")]
    want = {"CKV_K8S_16", "CKV_K8S_20"}
    got = {r["check_id"] for r in in_self}
    if want <= got:
        ok("checkov selfcheck: a privileged container with allowPrivilegeEscalation fails %s"
           % ", ".join(sorted(want)))
    else:
        bad("checkov selfcheck: known-bad manifest did not fail %s (failed: %s) - checkov is not "
            "really checking" % (sorted(want - got), sorted(got)))
    for cid in skips:
        hits = sorted({r.get("resource", "?") for r in in_dist if r["check_id"] == cid})
        ran = any(r["check_id"] == cid for r in afail + apass)
        if hits:
            ok("checkov skip %s still needed: fails on %s" % (cid, ", ".join(hits)))
        elif not ran:
            bad("checkov skip %s: no such check ran on dist/ (typo, or no resource it applies to) - "
                "remove it from %s" % (cid, args.skip_file))
        else:
            bad("checkov skip %s is stale: dist/ passes it - remove it from %s" % (cid, args.skip_file))
    return 1 if FAILED else 0


# ------------------------------------------------------------------ main ----

def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("schema")
    s.add_argument("--versions", required=True)
    s.add_argument("files", nargs="+")
    s = sub.add_parser("selfcheck")
    s.add_argument("--versions", required=True)
    s.add_argument("--workdir", required=True)
    s = sub.add_parser("uid-guard")
    s.add_argument("--contract", required=True)
    s.add_argument("files", nargs="+")
    s = sub.add_parser("checkov")
    s.add_argument("--dist", required=True)
    s.add_argument("--skip-file", required=True)
    s.add_argument("--main-json", required=True)
    s.add_argument("--audit-json", required=True)
    s.add_argument("--expect-version", default="")
    args = p.parse_args()
    return {"schema": cmd_schema, "selfcheck": cmd_selfcheck,
            "uid-guard": cmd_uid_guard, "checkov": cmd_checkov}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
