#!/usr/bin/env python3
"""tests/deploy/pod.py - turns a workload of deploy/k8s into the podman command that
runs its container as a kubelet would, so tests run exactly what the manifest says.

  pod.py run MANIFEST KIND --name NAME --netns PATH --volumes DIR --node NODE
             [--pod-ip IP] [--add-host HOST:IP ...] [--drop-cap CAP ...]
             [--secret NAME=DIR ...]        prints `podman run` arguments, one a line
  pod.py probes MANIFEST KIND               prints "liveness|readiness PATH PORT" lines
  pod.py grace MANIFEST KIND                prints terminationGracePeriodSeconds
  pod.py caps MANIFEST KIND                 prints capabilities.add, one a line
  pod.py image MANIFEST KIND                prints the container's image

Every field of the pod template that reaches the container is translated (host
namespaces, securityContext of pod and container, env with the downward API, args with
$(VAR) expansion, hostPath/configMap/secret/volumeClaimTemplate mounts, resource
limits); a field this script does not know makes it exit 2 naming it, so the manifest
cannot grow a setting the test silently ignores. Fields that only the cluster acts on
(labels, tolerations, priority, probes, ports) are listed in CLUSTER_ONLY."""
import argparse
import os
import re
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIGMAP = os.path.join(HERE, "..", "..", "deploy", "k8s", "configmap.yaml")

# Pod spec fields that the kubelet/scheduler handle and a single-node run has no
# counterpart for (or that are checked elsewhere: probes by the test, names by DNS).
CLUSTER_ONLY_POD = {"serviceAccountName", "automountServiceAccountToken", "dnsPolicy",
                    "priorityClassName", "tolerations", "terminationGracePeriodSeconds",
                    "containers", "volumes", "securityContext", "hostPID", "hostNetwork",
                    "hostIPC"}
CLUSTER_ONLY_CONTAINER = {"name", "image", "imagePullPolicy", "env", "args", "command",
                          "ports", "livenessProbe", "readinessProbe", "resources",
                          "securityContext", "volumeMounts"}
SECURITY_KEYS = {"privileged", "allowPrivilegeEscalation", "readOnlyRootFilesystem",
                 "runAsUser", "runAsGroup", "runAsNonRoot", "fsGroup", "capabilities",
                 "seccompProfile"}


def die(msg):
    print(f"pod.py: {msg}", file=sys.stderr)
    sys.exit(2)


def workload(path, kind):
    for d in yaml.safe_load_all(open(path)):
        if d and d.get("kind") == kind:
            return d
    die(f"no {kind} in {path}")


def pod_and_container(w):
    spec = w["spec"]["template"]["spec"]
    if len(spec["containers"]) != 1:
        die("exactly one container per pod is supported")
    for k in spec:
        if k not in CLUSTER_ONLY_POD:
            die(f"pod field spec.template.spec.{k} is not translated")
    c = spec["containers"][0]
    for k in c:
        if k not in CLUSTER_ONLY_CONTAINER:
            die(f"container field {k} is not translated")
    return spec, c


def security(spec, c):
    """The effective securityContext: the container's over the pod's."""
    sc = dict(spec.get("securityContext") or {})
    sc.update(c.get("securityContext") or {})
    for k in sc:
        if k not in SECURITY_KEYS:
            die(f"securityContext.{k} is not translated")
    return sc


def port_number(c, port):
    if isinstance(port, int):
        return port
    for p in c.get("ports", []):
        if p.get("name") == port:
            return p["containerPort"]
    die(f"probe port {port!r} is not a named port of the container")


def configmap_items(name):
    for d in yaml.safe_load_all(open(CONFIGMAP)):
        if d and d.get("kind") == "ConfigMap" and d["metadata"]["name"] == name:
            return d["data"]
    die(f"ConfigMap {name} not in {CONFIGMAP}")


def quantity_mem(q):
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi)?", str(q))
    if not m:
        die(f"memory quantity {q!r} not understood")
    return int(m.group(1)) * {None: 1, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30}[m.group(2)]


def quantity_cpu(q):
    q = str(q)
    return int(q[:-1]) / 1000 if q.endswith("m") else float(q)


def run_args(a, w):
    spec, c = pod_and_container(w)
    sc = security(spec, c)
    out = ["--name", a.name, "--hostname", a.name, "--pull=never"]
    # Host namespaces. The pod network is a namespace the test made (one per pod).
    if spec.get("hostPID"):
        out.append("--pid=host")
    if spec.get("hostIPC"):
        out.append("--ipc=host")
    out.append("--network=host" if spec.get("hostNetwork") else f"--network=ns:{a.netns}")
    for h in a.add_host:
        out += ["--add-host", h]

    # Security context.
    if sc.get("privileged"):
        out.append("--privileged")
    if sc.get("allowPrivilegeEscalation") is False:
        out += ["--security-opt", "no-new-privileges"]
    if sc.get("readOnlyRootFilesystem"):
        # The kubelet adds no tmpfs anywhere; podman would (/tmp, /run, /var/tmp).
        out += ["--read-only", "--read-only-tmpfs=false"]
    seccomp = (sc.get("seccompProfile") or {}).get("type", "RuntimeDefault")
    if seccomp == "Unconfined":
        out += ["--security-opt", "seccomp=unconfined"]
    elif seccomp != "RuntimeDefault":
        die(f"seccompProfile type {seccomp} is not translated")
    user = sc.get("runAsUser")
    if sc.get("runAsNonRoot") and user in (None, 0):
        die("runAsNonRoot with runAsUser 0 or unset: the kubelet would refuse to start it")
    if user is not None:
        group = sc.get("runAsGroup", 0 if user == 0 else user)
        out += ["--user", f"{user}:{group}"]
    if sc.get("fsGroup") is not None:
        out += ["--group-add", str(sc["fsGroup"])]
    caps = sc.get("capabilities") or {}
    for k in caps:
        if k not in ("add", "drop"):
            die(f"capabilities.{k} is not translated")
    for cap in caps.get("drop", []):
        out.append(f"--cap-drop={cap.lower()}")
    dropped = {d.upper() for d in a.drop_cap}
    for cap in caps.get("add", []):
        if cap.upper() not in dropped:
            out.append(f"--cap-add={cap.lower()}")

    # Resources: the limits, as the kubelet sets the container's cgroup.
    lim = (c.get("resources") or {}).get("limits") or {}
    if "memory" in lim:
        out += ["--memory", str(quantity_mem(lim["memory"]))]
    if "cpu" in lim:
        out += ["--cpus", str(quantity_cpu(lim["cpu"]))]

    # Environment (downward API fields a single node can answer).
    env = {}
    for e in c.get("env", []):
        if "value" in e:
            env[e["name"]] = str(e["value"])
            continue
        ref = (e.get("valueFrom") or {}).get("fieldRef", {}).get("fieldPath")
        vals = {"spec.nodeName": a.node, "metadata.name": a.name, "status.podIP": a.pod_ip,
                "metadata.namespace": w["metadata"].get("namespace", "default")}
        if ref not in vals or vals[ref] is None:
            die(f"env {e['name']}: valueFrom {e.get('valueFrom')} is not translated")
        env[e["name"]] = vals[ref]
    for k, v in env.items():
        out += ["--env", f"{k}={v}"]

    # Volumes.
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    for t in w["spec"].get("volumeClaimTemplates", []):
        vols[t["metadata"]["name"]] = {"name": t["metadata"]["name"], "claim": True}
    secrets = dict(s.split("=", 1) for s in a.secret)
    for m in c.get("volumeMounts", []):
        for k in m:
            if k not in ("name", "mountPath", "readOnly"):
                die(f"volumeMounts.{k} is not translated")
        v = vols.get(m["name"]) or die(f"volumeMount {m['name']} has no volume")
        ro = ":ro" if m.get("readOnly") else ""
        if "hostPath" in v:
            src = v["hostPath"]["path"]
        elif "configMap" in v:
            src = os.path.join(a.volumes, m["name"])
            os.makedirs(src, exist_ok=True)
            data = configmap_items(v["configMap"]["name"])
            for it in v["configMap"].get("items") or [{"key": k, "path": k} for k in data]:
                with open(os.path.join(src, it["path"]), "w") as f:
                    f.write(data[it["key"]])
                os.chmod(os.path.join(src, it["path"]), 0o644)
            os.chmod(src, 0o755)
        elif "secret" in v:
            name = v["secret"]["secretName"]
            src = secrets.get(name) or die(f"secret {name}: pass --secret {name}=DIR")
            mode = v["secret"].get("defaultMode", 0o644)
            gid = sc.get("fsGroup")
            for f in os.listdir(src):
                os.chmod(os.path.join(src, f), mode)
                if gid is not None:
                    os.chown(os.path.join(src, f), 0, gid)
            os.chmod(src, 0o755)
        elif v.get("claim"):
            # A fresh persistent volume, made group-writable for fsGroup as the kubelet does.
            src = os.path.join(a.volumes, m["name"])
            os.makedirs(src, exist_ok=True)
            gid = sc.get("fsGroup")
            if gid is not None:
                os.chown(src, 0, gid)
                os.chmod(src, 0o2775)
        else:
            die(f"volume {m['name']}: type {sorted(set(v) - {'name'})} is not translated")
        out += ["--volume", f"{src}:{m['mountPath']}{ro}"]

    # Image and arguments, with the kubelet's $(VAR) expansion.
    if "command" in c:
        out += ["--entrypoint", c["command"][0]]
    out.append(c["image"])
    expand = lambda s: re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), s)
    out += [expand(str(x)) for x in c.get("command", [])[1:]]
    out += [expand(str(x)) for x in c.get("args", [])]
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["run", "probes", "grace", "caps", "image"])
    p.add_argument("manifest")
    p.add_argument("kind")
    p.add_argument("--name")
    p.add_argument("--netns")
    p.add_argument("--volumes")
    p.add_argument("--node", default="node-a")
    p.add_argument("--pod-ip")
    p.add_argument("--add-host", action="append", default=[])
    p.add_argument("--drop-cap", action="append", default=[])
    p.add_argument("--secret", action="append", default=[])
    a = p.parse_args()
    w = workload(a.manifest, a.kind)
    spec, c = pod_and_container(w)
    if a.what == "run":
        if not (a.name and a.netns and a.volumes):
            die("run needs --name, --netns and --volumes")
        print("\n".join(run_args(a, w)))
    elif a.what == "probes":
        for kind in ("liveness", "readiness"):
            pr = c.get(kind + "Probe")
            if not pr:
                continue
            if "httpGet" not in pr:
                die(f"{kind}Probe: only httpGet is translated")
            print(kind, pr["httpGet"]["path"], port_number(c, pr["httpGet"]["port"]))
    elif a.what == "grace":
        print(spec.get("terminationGracePeriodSeconds", 30))
    elif a.what == "caps":
        print("\n".join(security(spec, c).get("capabilities", {}).get("add", [])))
    elif a.what == "image":
        print(c["image"])


if __name__ == "__main__":
    main()
