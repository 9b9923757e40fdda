#!/usr/bin/env python3
"""Checks the Helm charts (deploy/helm/gatehouse, the gateway, and
deploy/helm/gatehouse-control, the control plane) without a cluster or the helm binary.

- lints it with Helm's own SDK (helm-python-sdk);
- renders it for the default values and for every documented option, and validates
  every rendered object against the Kubernetes schemas (kubernetes-validate, strict:
  unknown fields are errors);
- checks that required values are refused with their message;
- checks that the chart and the control plane's `gateway deployment-yaml`
  (deploy/kubernetes/gateway-edge.yaml, kept up to date by a Rust test) give the same
  Deployment, Service, ConfigMap data and PodDisruptionBudget for the same settings.

Exit status 0 when everything holds; each failure is printed.
"""

import copy
import pathlib
import sys

import helm_python as helm
import kubernetes_validate
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHART = ROOT / "deploy" / "helm" / "gatehouse"
CONTROL_CHART = ROOT / "deploy" / "helm" / "gatehouse-control"
CONTROL_PLANE_MANIFEST = ROOT / "deploy" / "kubernetes" / "gateway-edge.yaml"
KUBERNETES_VERSION = "1.31"
# Custom resources kubernetes-validate has no schema for.
CRD_KINDS = {"ServiceMonitor", "ScaledObject"}

REQUIRED = {"gateway": {"endpoint": "https://control.example.com", "existingSecret": "edge-token"}}

CASES = {
    "defaults": {},
    "token created by the chart": {"gateway": {"existingSecret": "", "token": "GatewayKey edge&202612240000&c2ln"}},
    "without high availability": {"highAvailability": {"enabled": False}},
    "autoscaling": {"autoscaling": {"enabled": True}},
    "autoscaling with KEDA": {"autoscaling": {"enabled": True, "keda": {"enabled": True}}},
    "service monitor": {"serviceMonitor": {"enabled": True}},
    "private CA": {"gateway": {"caBundle": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"}},
    "persistent backup": {"backup": {"existingClaim": "edge-backup"}},
    "cluster IP service": {"service": {"type": "ClusterIP"}},
    "extra arguments": {"gateway": {"extraArgs": ["--workers", "2"]}},
    "identity": {"identity": {"tokenUrl": "https://login.example.com/tenant/oauth2/v2.0/token",
                              "clientId": "edge-gateway",
                              "clientSecret": {"existingSecret": "edge-identity"}}},
    "ingress mode": {"gateway": {"endpoint": "", "existingSecret": ""}, "ingress": {"enabled": True}},
    "hybrid mode": {"ingress": {"enabled": True}},
    "ingress mode, another namespace": {"gateway": {"endpoint": "", "existingSecret": ""},
                                        "ingress": {"enabled": True, "namespace": "shop"}},
}

MUST_FAIL = {
    "no endpoint": ({"gateway": {"endpoint": "", "existingSecret": "edge-token"}}, "gateway.endpoint is required"),
    "no token": ({"gateway": {"endpoint": "https://control.example.com"}}, "gateway.existingSecret"),
    "identity without its secret": ({**REQUIRED, "identity": {"tokenUrl": "https://login.example.com/t",
                                                            "clientId": "edge-gateway"}},
                                    "identity.tokenUrl needs identity.clientId"),
}

failures = []


def merge(base, extra):
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


CONTROL_REQUIRED = {
    "publicUrl": "https://control.example.com",
    "database": {"existingSecret": "control-db"},
    "adminToken": {"existingSecret": "control-admin"},
    "encryptionKey": {"existingSecret": "control-key"},
}

CONTROL_CASES = {
    "defaults": {},
    "one replica": {"replicaCount": 1},
    "TLS": {"tls": {"existingSecret": "control-tls"}},
    "load balancer": {"service": {"type": "LoadBalancer"}},
}

CONTROL_MUST_FAIL = {
    "no public URL": ({**CONTROL_REQUIRED, "publicUrl": ""}, "publicUrl is required"),
    "no database": ({**CONTROL_REQUIRED, "database": {"existingSecret": ""}}, "database.existingSecret"),
    "no admin token": ({**CONTROL_REQUIRED, "adminToken": {"existingSecret": ""}}, "adminToken.existingSecret"),
    "no encryption key": ({**CONTROL_REQUIRED, "encryptionKey": {"existingSecret": ""}}, "encryptionKey.existingSecret"),
}


def check_control_chart():
    lint = helm.lint(str(CONTROL_CHART))
    for message in lint.get("messages", []):
        if message.get("severity", 0) > 1:
            failures.append(f"control chart lint: {message['path']}: {message['error']}")
    for case, extra in CONTROL_CASES.items():
        try:
            validate(f"control chart, {case}", render(merge(CONTROL_REQUIRED, extra), name="control", chart=CONTROL_CHART))
        except helm.HelmError as error:
            failures.append(f"control chart, {case}: does not render: {error}")
    for case, (values, needle) in CONTROL_MUST_FAIL.items():
        try:
            render(values, name="control", chart=CONTROL_CHART)
            failures.append(f"control chart, {case}: rendered, but must be refused")
        except helm.HelmError as error:
            if needle not in str(error):
                failures.append(f"control chart, {case}: refused without saying `{needle}`: {error}")
    objects = render(CONTROL_REQUIRED, name="control", chart=CONTROL_CHART)
    container = by_kind(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    secrets = {e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"] if "valueFrom" in e}
    if secrets != {"GATEHOUSE_DATABASE_URL": "control-db", "GATEHOUSE_ADMIN_TOKEN": "control-admin",
                   "GATEHOUSE_ENCRYPTION_KEY": "control-key"}:
        failures.append(f"control chart: the secrets are not all taken from Secrets: {secrets}")
    if not container["securityContext"]["readOnlyRootFilesystem"]:
        failures.append("control chart: the root filesystem is writable")
    image = container["image"]
    if image.endswith(":latest") or ":" not in image:
        failures.append(f"control chart: the image is not pinned: {image}")
    tls = render(merge(CONTROL_REQUIRED, CONTROL_CASES["TLS"]), name="control", chart=CONTROL_CHART)
    probe = by_kind(tls, "Deployment")["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    if probe["httpGet"]["scheme"] != "HTTPS":
        failures.append(f"control chart: with TLS the probes must use HTTPS: {probe}")
    if by_kind(render(merge(CONTROL_REQUIRED, CONTROL_CASES["one replica"]), name="control", chart=CONTROL_CHART),
               "PodDisruptionBudget") is not None:
        failures.append("control chart: a PodDisruptionBudget for one replica would block node drains")


def render(values, name="edge", chart=CHART):
    chart = helm.Chart.load(str(chart))
    manifests = chart.render(values, name=name, namespace="gateways")
    objects = []
    for text in manifests.values():
        for document in yaml.safe_load_all(text or ""):
            if document:
                objects.append(document)
    return objects


def validate(case, objects):
    if not objects:
        failures.append(f"{case}: nothing rendered")
    for obj in objects:
        if obj.get("kind") in CRD_KINDS:
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            failures.append(f"{case}: {obj.get('kind')} {obj['metadata']['name']}: {error.message} at {list(error.path)}")
        except kubernetes_validate.SchemaNotFoundError as error:
            failures.append(f"{case}: {obj.get('kind')}: no schema ({error})")


def by_kind(objects, kind, name=None):
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    return found[0] if found else None


def same(label, chart_value, control_value):
    if chart_value != control_value:
        failures.append(f"chart vs control plane: {label} differ:\n  chart:         {chart_value}\n  control plane: {control_value}")


def compare_with_control_plane():
    control = [d for d in yaml.safe_load_all(CONTROL_PLANE_MANIFEST.read_text()) if d]
    chart = render(merge(REQUIRED, {"replicaCount": 2, "image": {"tag": ""}}))
    c_dep, h_dep = by_kind(control, "Deployment"), by_kind(chart, "Deployment")
    same("replicas", h_dep["spec"].get("replicas"), c_dep["spec"].get("replicas"))
    same("strategy", h_dep["spec"]["strategy"], c_dep["spec"]["strategy"])
    c_pod, h_pod = c_dep["spec"]["template"]["spec"], h_dep["spec"]["template"]["spec"]
    for field in ["terminationGracePeriodSeconds", "dnsPolicy", "automountServiceAccountToken",
                  "securityContext", "topologySpreadConstraints"]:
        strip = lambda value: yaml.safe_dump(value).replace("app: edge", "")
        same(f"pod {field}", strip(h_pod.get(field)), strip(c_pod.get(field)))
    c_box, h_box = c_pod["containers"][0], h_pod["containers"][0]
    for field in ["image", "args", "ports", "env", "resources", "startupProbe", "readinessProbe",
                  "livenessProbe", "securityContext", "volumeMounts"]:
        same(f"container {field}", h_box.get(field), c_box.get(field))
    same("volumes", h_pod.get("volumes"), c_pod.get("volumes"))
    same("config map data (endpoint)",
         by_kind(chart, "ConfigMap", "edge-env")["data"]["config.service.endpoint"],
         by_kind(control, "ConfigMap")["data"]["config.service.endpoint"])
    c_svc, h_svc = by_kind(control, "Service"), by_kind(chart, "Service", "edge")
    for field in ["type", "externalTrafficPolicy", "ports"]:
        same(f"service {field}", h_svc["spec"].get(field), c_svc["spec"].get(field))
    same("pod disruption budget", by_kind(chart, "PodDisruptionBudget")["spec"]["minAvailable"],
         by_kind(control, "PodDisruptionBudget")["spec"]["minAvailable"])


def main():
    lint = helm.lint(str(CHART))
    for message in lint.get("messages", []):
        # Severity 1 is information (`icon is recommended`).
        if message.get("severity", 0) > 1:
            failures.append(f"lint: {message['path']}: {message['error']}")
    for case, extra in CASES.items():
        try:
            validate(case, render(merge(REQUIRED, extra)))
        except helm.HelmError as error:
            failures.append(f"{case}: does not render: {error}")
    for case, (values, needle) in MUST_FAIL.items():
        try:
            render(values)
            failures.append(f"{case}: rendered, but must be refused")
        except helm.HelmError as error:
            if needle not in str(error):
                failures.append(f"{case}: refused without saying `{needle}`: {error}")
    compare_with_control_plane()
    ingress = render(merge(REQUIRED, CASES["ingress mode"]))
    kinds = sorted(o["kind"] for o in ingress)
    for kind in ["Role", "RoleBinding", "ServiceAccount"]:
        if kind not in kinds:
            failures.append(f"ingress mode: no {kind} ({kinds})")
    role = by_kind(ingress, "Role")
    granted = {(group, resource, verb) for rule in role["rules"] for group in rule["apiGroups"]
               for resource in rule["resources"] for verb in rule["verbs"]}
    needed = {("networking.k8s.io", "ingresses", "watch"), ("", "services", "list"), ("", "secrets", "watch"),
              ("events.k8s.io", "events", "create"), ("events.k8s.io", "events", "patch")}
    if not needed <= granted:
        failures.append(f"ingress mode: the Role lacks {sorted(needed - granted)}")
    env = by_kind(ingress, "ConfigMap", "edge-env")["data"]
    if env.get("k8s.ingress.enabled") != "true" or "config.service.endpoint" in env:
        failures.append(f"ingress mode: the gateway's settings are {env}")
    if by_kind(ingress, "Secret") is not None:
        failures.append("ingress mode: a token Secret is created")
    keda = render(merge(REQUIRED, CASES["autoscaling with KEDA"]))
    kinds = [o["kind"] for o in keda]
    if "ScaledObject" not in kinds or "HorizontalPodAutoscaler" in kinds:
        failures.append(f"KEDA autoscaling: a ScaledObject and no HPA expected, got {kinds}")
    else:
        scaled = by_kind(keda, "ScaledObject")
        trigger = scaled["spec"]["triggers"][0]
        if scaled["spec"]["scaleTargetRef"]["name"] != by_kind(keda, "Deployment")["metadata"]["name"] \
                or "gatehouse_requests_total" not in trigger["metadata"]["query"] \
                or not isinstance(trigger["metadata"]["threshold"], str):
            failures.append(f"KEDA autoscaling: the ScaledObject is wrong: {scaled['spec']}")
    hybrid = render(merge(REQUIRED, CASES["hybrid mode"]))
    env = by_kind(hybrid, "ConfigMap", "edge-env")["data"]
    if env.get("k8s.ingress.enabled") != "true" or "config.service.endpoint" not in env:
        failures.append(f"hybrid mode: the gateway's settings are {env}")
    container = by_kind(hybrid, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    if [e["name"] for e in container.get("env", [])] != ["config.service.auth"]:
        failures.append(f"hybrid mode: the token is not passed: {container.get('env')}")
    if "ServiceAccount" not in [o["kind"] for o in hybrid]:
        failures.append("hybrid mode: no ServiceAccount to read Ingresses with")
    rendered = render(REQUIRED)
    deployment = by_kind(rendered, "Deployment")
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    if image.endswith(":latest") or ":" not in image:
        failures.append(f"the image is not pinned: {image}")
    check_control_chart()
    for failure in failures:
        print(f"FAIL {failure}")
    print(f"gateway chart: {len(CASES)} value sets rendered and validated, {len(MUST_FAIL)} refusals checked, "
          f"compared with the control plane's manifest; control chart: {len(CONTROL_CASES)} value sets, "
          f"{len(CONTROL_MUST_FAIL)} refusals: {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
