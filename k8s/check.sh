#!/usr/bin/env bash
# Renders every overlay with `kubectl kustomize` and checks it offline: kubernetes-validate
# --strict against Kubernetes 1.30 for the built-in kinds (unknown fields are errors), the
# KEDA, RabbitMQ-operator, ServiceMonitor and PrometheusRule resources strictly against their published CRD
# schemas (k8s/crds, sources in k8s/crds/SOURCES.md; validate_crs.py), then leakwatch's
# own rules: no Secret is rendered (they are referenced, never inlined), and every leakwatch
# container runs non-root with a read-only root filesystem, no privilege escalation, all
# capabilities dropped, the RuntimeDefault seccomp profile, probes, requests and limits; and
# checkov --framework kubernetes, with every skipped check named with its reason
# (k8s/checkov.yaml, and `checkov.io/skipN` annotations on the resources they concern).
# Then promtool checks the prod overlay's alerting rules and runs their unit tests.
#
#   k8s/check.sh [PYTHON_VENV]      # the venv holding kubernetes-validate (and PyYAML)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-target/test-venv}
command -v kubectl >/dev/null || { echo "k8s/check.sh: kubectl is needed (kustomize)" >&2; exit 1; }
[ -x "$venv/bin/kubernetes-validate" ] || "$venv/bin/pip" install -q kubernetes-validate==1.37.0
[ -x "$venv/bin/checkov" ] || "$venv/bin/pip" install -q checkov==3.3.30
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for overlay in k8s/overlays/*/ k8s/jobs/; do
  name=$(basename "$overlay")
  kubectl kustomize "$overlay" >"$out/$name.yaml"
  "$venv/bin/kubernetes-validate" --strict -k 1.30.0 --quiet --no-warn "$out/$name.yaml"
  "$venv/bin/python" k8s/validate_crs.py "$out/$name.yaml"
  # checkov: every check passes but those k8s/checkov.yaml and the resources' annotations
  # skip, each with its reason.
  BC_SKIP_MAPPING=TRUE "$venv/bin/checkov" --config-file k8s/checkov.yaml -f "$out/$name.yaml" >"$out/$name.checkov" 2>&1 ||
    { cat "$out/$name.checkov" >&2; echo "k8s/$name: checkov failed" >&2; exit 1; }
  "$venv/bin/python" - "$out/$name.yaml" "$name" <<'PY'
import sys, yaml
path, overlay = sys.argv[1], sys.argv[2]
docs = [d for d in yaml.safe_load_all(open(path)) if d]
problems = []
for d in docs:
    kind, name = d["kind"], d["metadata"]["name"]
    if kind == "Secret":
        problems.append(f"{kind}/{name}: secrets are referenced, never rendered")
    if kind not in ("Deployment", "StatefulSet", "Job") or not name.startswith("leakwatch-"):
        continue
    pod = d["spec"]["template"]["spec"]
    psc = pod.get("securityContext", {})
    if not psc.get("runAsNonRoot") or psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problems.append(f"{kind}/{name}: pod must run as non-root with seccomp RuntimeDefault")
    if pod.get("automountServiceAccountToken") is not False:
        problems.append(f"{kind}/{name}: no service account token")
    for c in pod["containers"]:
        sc = c.get("securityContext", {})
        if not (sc.get("readOnlyRootFilesystem") and sc.get("allowPrivilegeEscalation") is False
                and sc.get("capabilities", {}).get("drop") == ["ALL"]):
            problems.append(f"{kind}/{name}/{c['name']}: read-only root, no escalation, drop ALL")
        if kind != "Job" and not (c.get("readinessProbe") and c.get("livenessProbe")):
            problems.append(f"{kind}/{name}/{c['name']}: readiness and liveness probes")
        r = c.get("resources", {})
        if not (r.get("requests") and r.get("limits")):
            problems.append(f"{kind}/{name}/{c['name']}: requests and limits")
roles = {d["metadata"]["name"] for d in docs if d["kind"] in ("Deployment", "StatefulSet")}
for want in [] if overlay == "jobs" else ("leakwatch-crawler", "leakwatch-matcher", "leakwatch-frontier", "leakwatch-indexer",
             "leakwatch-console"):
    if want not in roles:
        problems.append(f"{want} is missing")
if problems:
    sys.exit(f"k8s/{overlay}:\n  " + "\n  ".join(problems))
print(f"k8s/{overlay}: {len(docs)} resources valid")
PY
done

# The prod overlay's alerting rules: promtool (Debian's `prometheus` package) checks their
# PromQL and runs their unit tests on synthetic series (k8s/monitoring/rules.test.yaml).
if command -v promtool >/dev/null; then
  kubectl kustomize k8s/overlays/prod >"$out/prod.yaml"
  "$venv/bin/python" - "$out/prod.yaml" "$out/rules.yaml" <<'PY'
import sys, yaml
rules = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] == "PrometheusRule"]
if len(rules) != 1:
    sys.exit(f"k8s/prod: expected one PrometheusRule, found {len(rules)}")
yaml.safe_dump(rules[0]["spec"], open(sys.argv[2], "w"))
PY
  cp k8s/monitoring/rules.test.yaml "$out/"
  promtool check rules "$out/rules.yaml"
  promtool test rules "$out/rules.test.yaml"
else
  echo "SKIPPED: promtool is not installed; the alerting rules were not tested" >&2
fi
