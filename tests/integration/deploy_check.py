#!/usr/bin/env python3
"""tests/integration/deploy_check.py - asserts what an operator relies on in deploy/.

Parses (never greps) the Kubernetes manifests with a real YAML parser, the systemd units
with an INI-style parser that keeps repeated keys, and the Dockerfiles instruction by
instruction, and checks the properties of docs/deploy.md: least privilege, read-only host
mounts, probes, scrape annotations, the agent's --tvn list matching the tvn StatefulSet,
the units' sandboxing, the images' stages and runtime libraries.

  deploy_check.py [--root DIR] [--destdir DIR] [--help-text PROG=FILE ...] [--mutations]

--destdir     a `make install DESTDIR=` tree: the binaries the Dockerfiles copy must be
              there, and every shared library they need must come from a package the
              runtime stage installs.
--help-text   the --help output of tvn / ecv-agent: every flag the manifests, the
              ConfigMap and the units use must be one the program documents.
--mutations   also prove the checks can fail: break each property in a copy of the
              parsed manifests and expect the matching complaint.
Prints one line per check and exits 1 if any failed.
"""
import argparse
import copy
import ipaddress
import json
import os
import re
import shlex
import subprocess
import sys

import yaml

# SYS_ADMIN for perf_event_open() of uprobes on kernels fixed for CVE-2025-38466; it
# implies BPF and PERFMON (docs/deploy.md). tests/deploy/test_daemonset.sh shows the set
# is minimal by dropping each in turn.
AGENT_CAPS = {"SYS_ADMIN", "SYS_PTRACE", "SYS_RESOURCE"}
AGENT_UNIT_CAPS = {"CAP_" + c for c in AGENT_CAPS} | {"CAP_DAC_READ_SEARCH"}
READONLY_HOST_PATHS = {"/proc", "/sys/kernel/btf"}
# Packages debian:bookworm-slim already has; every other runtime library must be
# installed by the Dockerfile's runtime stage.
BASE_PACKAGES = {"libc6", "libgcc-s1", "zlib1g"}


class Checker:
    def __init__(self):
        self.failures = []
        self.count = 0

    def check(self, cond, what):
        self.count += 1
        if cond:
            print(f"  ok    {what}")
        else:
            print(f"  FAIL  {what}")
            self.failures.append(what)
        return cond


# --- Kubernetes ---------------------------------------------------------------------

def load_k8s(k8s_dir):
    """Returns ({file: [docs]}, kustomization dict)."""
    files = {}
    kust = None
    for name in sorted(os.listdir(k8s_dir)):
        if not name.endswith((".yaml", ".yml")):
            continue
        with open(os.path.join(k8s_dir, name)) as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
        if name in ("kustomization.yaml", "kustomization.yml"):
            kust = docs[0]
        else:
            files[name] = docs
    return files, kust


def objects(files, kind=None):
    for docs in files.values():
        for d in docs:
            if kind is None or d.get("kind") == kind:
                yield d


def one(files, kind, c):
    found = list(objects(files, kind))
    c.check(len(found) == 1, f"exactly one {kind} (found {len(found)})")
    return found[0] if found else {}


def arg_values(args, flag):
    """Values of --flag VALUE and --flag=VALUE in a container's args, in order."""
    vals = []
    i = 0
    while i < len(args):
        a = str(args[i])
        if a == flag and i + 1 < len(args):
            vals.append(str(args[i + 1]))
            i += 2
            continue
        if a.startswith(flag + "="):
            vals.append(a[len(flag) + 1:])
        i += 1
    return vals


def flags_in(args):
    return {str(a).split("=", 1)[0] for a in args if str(a).startswith("--")}


def resolve_port(container, port):
    """A probe's port: a number or the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    for p in container.get("ports", []):
        if p.get("name") == port:
            return p.get("containerPort")
    return None


def check_resources(c, who, container):
    res = container.get("resources") or {}
    for part in ("requests", "limits"):
        got = res.get(part) or {}
        c.check("cpu" in got and "memory" in got, f"{who}: resources.{part} has cpu and memory")


def check_probes(c, who, container, port):
    for probe in ("livenessProbe", "readinessProbe"):
        hg = (container.get(probe) or {}).get("httpGet") or {}
        c.check(hg.get("path") == "/healthz" and resolve_port(container, hg.get("port")) == port,
                f"{who}: {probe} is httpGet /healthz on port {port}")


def check_scrape(c, who, template, port):
    ann = (template.get("metadata") or {}).get("annotations") or {}
    c.check(ann.get("prometheus.io/scrape") == "true"
            and str(ann.get("prometheus.io/port")) == str(port)
            and ann.get("prometheus.io/path") == "/metrics",
            f"{who}: prometheus.io scrape/port={port}/path=/metrics annotations")


def check_k8s(c, files, kust, k8s_dir, helps):
    print("== Kubernetes manifests")
    for name, docs in files.items():
        for d in docs:
            c.check(isinstance(d, dict) and d.get("apiVersion") and d.get("kind")
                    and (d.get("metadata") or {}).get("name"),
                    f"{name}: {d.get('kind')} has apiVersion, kind, metadata.name")

    # kustomization lists exactly the manifests present
    c.check(kust is not None, "kustomization.yaml present")
    listed = set((kust or {}).get("resources") or [])
    c.check(listed == set(files),
            f"kustomization resources == manifest files (missing {sorted(set(files) - listed)}, "
            f"extra {sorted(listed - set(files))})")

    ns = one(files, "Namespace", c)
    nsname = (ns.get("metadata") or {}).get("name")
    for d in objects(files):
        if d.get("kind") != "Namespace":
            c.check((d.get("metadata") or {}).get("namespace") == nsname,
                    f"{d.get('kind')}/{d['metadata'].get('name')} is in namespace {nsname}")

    sas = {d["metadata"]["name"] for d in objects(files, "ServiceAccount")}
    cms = {d["metadata"]["name"]: d for d in objects(files, "ConfigMap")}

    # --- tvn StatefulSet + headless Service ---
    sts = one(files, "StatefulSet", c)
    sspec = sts.get("spec") or {}
    replicas = sspec.get("replicas", 1)
    svcname = sspec.get("serviceName")
    tpl = sspec.get("template") or {}
    tspec = tpl.get("spec") or {}
    tlabels = (tpl.get("metadata") or {}).get("labels") or {}
    svcs = [s for s in objects(files, "Service") if s["metadata"]["name"] == svcname]
    c.check(len(svcs) == 1, f"tvn: serviceName '{svcname}' names a Service")
    svc = svcs[0] if svcs else {}
    sv = svc.get("spec") or {}
    c.check(sv.get("clusterIP") == "None", "tvn: Service is headless (clusterIP: None)")
    sel = sv.get("selector") or {}
    c.check(sel and all(tlabels.get(k) == v for k, v in sel.items()),
            "tvn: Service selector matches the StatefulSet's pod labels")
    ports = {(p.get("port"), p.get("protocol", "TCP")) for p in sv.get("ports") or []}
    c.check((4789, "UDP") in ports, "tvn: Service exposes UDP 4789")
    c.check((8080, "TCP") in ports, "tvn: Service exposes TCP 8080")

    tcs = tspec.get("containers") or [{}]
    tc = tcs[0]
    targs = [str(a) for a in tc.get("args") or []]
    c.check(((tc.get("securityContext") or {}).get("runAsNonRoot") or
             (tspec.get("securityContext") or {}).get("runAsNonRoot")) is True,
            "tvn: runAsNonRoot")
    uid = (tc.get("securityContext") or {}).get("runAsUser",
                                                 (tspec.get("securityContext") or {}).get("runAsUser"))
    c.check(isinstance(uid, int) and uid != 0, f"tvn: runs as a non-root uid ({uid})")
    tsc = tc.get("securityContext") or {}
    tcaps = tsc.get("capabilities") or {}
    c.check(not tcaps.get("add") and tcaps.get("drop") == ["ALL"],
            "tvn: no capability added, ALL dropped")
    c.check(tsc.get("privileged") is not True and tsc.get("allowPrivilegeEscalation") is False,
            "tvn: not privileged, no privilege escalation")
    c.check(tsc.get("readOnlyRootFilesystem") is True, "tvn: read-only root file system")
    cports = {(p.get("containerPort"), p.get("protocol", "TCP")) for p in tc.get("ports") or []}
    c.check((4789, "UDP") in cports, "tvn: container port 4789/UDP")
    c.check(arg_values(targs, "--listen") == ["0.0.0.0:4789"], "tvn: --listen 0.0.0.0:4789")
    outs = arg_values(targs, "--out")
    c.check(any(o.startswith("pcap:/var/lib/tvn/") for o in outs),
            "tvn: --out pcap:/var/lib/tvn/...")
    http = arg_values(targs, "--http")
    c.check(len(http) == 1 and http[0].endswith(":8080"), "tvn: --http ...:8080")
    mounts = {m.get("mountPath"): m for m in tc.get("volumeMounts") or []}
    vols = {v.get("name"): v for v in tspec.get("volumes") or []}
    vcts = {(t.get("metadata") or {}).get("name") for t in sspec.get("volumeClaimTemplates") or []}
    data = mounts.get("/var/lib/tvn", {}).get("name")
    c.check(data in vcts or "hostPath" in vols.get(data, {}),
            "tvn: /var/lib/tvn is a PVC (volumeClaimTemplates) or a hostPath")
    tok = arg_values(targs, "--http-token-file")
    tokdir = os.path.dirname(tok[0]) if tok else None
    tokvol = vols.get(mounts.get(tokdir, {}).get("name"), {})
    c.check(bool(tok) and "secret" in tokvol,
            "tvn: --http-token-file read from a mounted Secret")
    check_resources(c, "tvn", tc)
    check_probes(c, "tvn", tc, 8080)
    check_scrape(c, "tvn", tpl, 8080)
    c.check(tspec.get("serviceAccountName") in sas, "tvn: its ServiceAccount exists")

    # --- agent DaemonSet ---
    ds = one(files, "DaemonSet", c)
    dtpl = (ds.get("spec") or {}).get("template") or {}
    dspec = dtpl.get("spec") or {}
    ac = (dspec.get("containers") or [{}])[0]
    aargs = [str(a) for a in ac.get("args") or []]
    c.check(dspec.get("hostPID") is True, "agent: hostPID: true")
    c.check(dspec.get("serviceAccountName") in sas, "agent: its ServiceAccount exists")
    c.check(any(t.get("operator") == "Exists" and not t.get("key") and not t.get("effect")
                for t in dspec.get("tolerations") or []),
            "agent: a toleration with operator Exists and no key/effect (every node)")

    dvols = {v.get("name"): v for v in dspec.get("volumes") or []}
    host_mounts = {}
    for m in ac.get("volumeMounts") or []:
        hp = (dvols.get(m.get("name")) or {}).get("hostPath")
        if hp:
            host_mounts[hp.get("path")] = m
    for path in sorted(READONLY_HOST_PATHS):
        c.check(path in host_mounts and host_mounts[path].get("readOnly") is True,
                f"agent: host {path} mounted read-only")
    c.check(all(m.get("readOnly") is True for m in host_mounts.values()),
            f"agent: every host mount is read-only ({sorted(host_mounts)})")

    env = {e.get("name"): e for e in ac.get("env") or []}
    fr = ((env.get("NODE_NAME") or {}).get("valueFrom") or {}).get("fieldRef") or {}
    c.check(fr.get("fieldPath") == "spec.nodeName", "agent: NODE_NAME from fieldRef spec.nodeName")
    c.check(arg_values(aargs, "--node") == ["$(NODE_NAME)"], "agent: --node $(NODE_NAME)")
    metrics = arg_values(aargs, "--metrics")
    mport = int(metrics[0].rsplit(":", 1)[1]) if len(metrics) == 1 else None
    c.check(metrics == ["0.0.0.0:9435"], "agent: --metrics 0.0.0.0:9435")
    check_probes(c, "agent", ac, mport)
    check_scrape(c, "agent", dtpl, mport)
    check_resources(c, "agent", ac)

    stsns = (sts.get("metadata") or {}).get("namespace")
    stsname = (sts.get("metadata") or {}).get("name")
    want = [f"{stsname}-{i}.{svcname}.{stsns}.svc:4789" for i in range(replicas)]
    c.check(arg_values(aargs, "--tvn") == want,
            f"agent: --tvn lists every tvn pod of the headless Service ({want})")

    sc = ac.get("securityContext") or {}
    caps = sc.get("capabilities") or {}
    c.check(set(caps.get("add") or []) == AGENT_CAPS and len(caps.get("add") or []) == len(AGENT_CAPS),
            f"agent: capabilities.add is exactly {sorted(AGENT_CAPS)}")
    c.check(caps.get("drop") == ["ALL"], "agent: capabilities.drop [ALL]")
    c.check(sc.get("privileged") is False, "agent: privileged: false")
    c.check(sc.get("readOnlyRootFilesystem") is True, "agent: read-only root file system")
    c.check(sc.get("allowPrivilegeEscalation") is False, "agent: no privilege escalation")
    c.check(dspec.get("hostNetwork") is not True, "agent: not on the host network")

    # --- ConfigMap: the --config files ---
    for d in (tspec, dspec):
        for v in d.get("volumes") or []:
            cm = v.get("configMap")
            if not cm:
                continue
            c.check(cm.get("name") in cms, f"ConfigMap {cm.get('name')} exists")
            for it in cm.get("items") or []:
                c.check(it.get("key") in ((cms.get(cm.get("name")) or {}).get("data") or {}),
                        f"ConfigMap {cm.get('name')} has key {it.get('key')}")
    prog_of = {"agent.json": "ecv-agent", "tvn.json": "tvn"}
    for cm in cms.values():
        for key, text in (cm.get("data") or {}).items():
            if not key.endswith(".json"):
                continue
            try:
                obj = json.loads(text)
            except ValueError as e:
                c.check(False, f"ConfigMap {key}: valid JSON ({e})")
                continue
            c.check(isinstance(obj, dict) and all(
                not isinstance(v, (dict, type(None))) and
                (not isinstance(v, list) or all(isinstance(e, (str, int, float)) for e in v))
                for v in obj.values()), f"ConfigMap {key}: flat object of flag values")
            prog = prog_of.get(key)
            if prog in helps:
                unknown = sorted(k for k in obj if f"--{k}" not in helps[prog])
                c.check(not unknown, f"ConfigMap {key}: every key is a {prog} flag {unknown or ''}")

    for prog, args in (("tvn", targs), ("ecv-agent", aargs)):
        if prog in helps:
            unknown = sorted(flags_in(args) - helps[prog])
            c.check(not unknown, f"k8s args: every flag is in '{prog} --help' {unknown or ''}")


# --- systemd ------------------------------------------------------------------------

def parse_unit(path):
    """{section: {key: [values...]}}; comments, continuation lines, repeated keys."""
    sections = {}
    cur = None
    pending = ""
    with open(path) as f:
        for raw in f:
            line = raw.rstrip("\n")
            if pending:
                line = pending + line
                pending = ""
            s = line.strip()
            if not s or s[0] in "#;":
                continue
            if s.endswith("\\"):
                pending = s[:-1] + " "
                continue
            if s.startswith("[") and s.endswith("]"):
                cur = sections.setdefault(s[1:-1], {})
                continue
            if "=" not in s or cur is None:
                raise ValueError(f"{path}: cannot parse line: {raw!r}")
            k, v = s.split("=", 1)
            cur.setdefault(k.strip(), []).append(v.strip())
    return sections


def last(svc, key):
    vals = svc.get(key)
    return vals[-1] if vals else None


def parse_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            s = line.strip()
            if s and not s.startswith("#") and "=" in s:
                k, v = s.split("=", 1)
                env[k.strip()] = v.strip()
    return env


def check_systemd(c, sd_dir, helps):
    print("== systemd units")
    tvn = parse_unit(os.path.join(sd_dir, "tvn.service")).get("Service", {})
    user = last(tvn, "User")
    c.check(user and user != "root" and user != "0", f"tvn.service: User={user} (not root)")
    c.check(last(tvn, "ProtectSystem") == "strict", "tvn.service: ProtectSystem=strict")
    rw = " ".join(tvn.get("ReadWritePaths") or []).split()
    c.check("/var/lib/tvn" in rw, "tvn.service: ReadWritePaths=/var/lib/tvn")
    c.check(last(tvn, "Restart") == "on-failure", "tvn.service: Restart=on-failure")
    c.check(not any(v for v in tvn.get("AmbientCapabilities") or []),
            "tvn.service: no AmbientCapabilities (port 4789 > 1024)")
    c.check(last(tvn, "CapabilityBoundingSet") == "", "tvn.service: empty CapabilityBoundingSet")
    for k in ("ProtectHome", "PrivateTmp", "NoNewPrivileges"):
        c.check(last(tvn, k) == "yes", f"tvn.service: {k}=yes")
    fams = set((last(tvn, "RestrictAddressFamilies") or "").split())
    c.check(fams == {"AF_INET", "AF_INET6", "AF_UNIX"},
            "tvn.service: RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX")
    c.check(last(tvn, "ExecStart") == "/usr/local/bin/tvn $TVN_ARGS",
            "tvn.service: ExecStart=/usr/local/bin/tvn $TVN_ARGS")
    c.check(bool(last(tvn, "EnvironmentFile")), "tvn.service: EnvironmentFile set")
    tenv = parse_env(os.path.join(sd_dir, "tvn.env"))
    targs = shlex.split(tenv.get("TVN_ARGS", ""))
    c.check(bool(targs), "tvn.env: TVN_ARGS set")
    listen = arg_values(targs, "--listen")
    c.check(len(listen) == 1 and int(listen[0].rsplit(":", 1)[1]) > 1024,
            "tvn.env: --listen port above 1024 (no capability needed)")
    http = arg_values(targs, "--http")
    c.check(len(http) == 1 and ipaddress.ip_address(http[0].rsplit(":", 1)[0].strip("[]")).is_loopback,
            "tvn.env: --http bound to loopback")
    c.check(all(o.split(":", 1)[1].startswith("/var/lib/tvn/")
                for o in arg_values(targs, "--out") if o.startswith("pcap:")),
            "tvn.env: pcap outputs under ReadWritePaths")

    ag = parse_unit(os.path.join(sd_dir, "ecv-agent.service")).get("Service", {})
    caps = set((last(ag, "CapabilityBoundingSet") or "").split())
    c.check(caps == AGENT_UNIT_CAPS, f"ecv-agent.service: CapabilityBoundingSet is exactly "
            f"{sorted(AGENT_UNIT_CAPS)}")
    c.check(last(ag, "User") in (None, "root"), "ecv-agent.service: runs as root")
    c.check(last(ag, "Restart") == "on-failure", "ecv-agent.service: Restart=on-failure")
    c.check(not any(v for v in ag.get("AmbientCapabilities") or []),
            "ecv-agent.service: no AmbientCapabilities")
    c.check(last(ag, "ExecStart") == "/usr/local/bin/ecv-agent $ECV_AGENT_ARGS",
            "ecv-agent.service: ExecStart=/usr/local/bin/ecv-agent $ECV_AGENT_ARGS")
    aenv = parse_env(os.path.join(sd_dir, "ecv-agent.env"))
    aargs = shlex.split(aenv.get("ECV_AGENT_ARGS", ""))
    c.check(len(arg_values(aargs, "--tvn")) >= 1, "ecv-agent.env: --tvn given")
    for prog, args in (("tvn", targs), ("ecv-agent", aargs)):
        if prog in helps:
            unknown = sorted(flags_in(args) - helps[prog])
            c.check(not unknown, f"systemd env: every flag is in '{prog} --help' {unknown or ''}")


# --- Dockerfiles --------------------------------------------------------------------

def parse_dockerfile(path):
    """[(INSTRUCTION, rest)] with continuation lines joined and comments dropped."""
    out = []
    cur = ""
    with open(path) as f:
        for raw in f:
            s = raw.strip()
            if not cur and (not s or s.startswith("#")):
                continue
            if cur and s.startswith("#"):
                continue
            if s.endswith("\\"):
                cur += s[:-1] + " "
                continue
            cur += s
            ins, _, rest = cur.partition(" ")
            out.append((ins.upper(), rest.strip()))
            cur = ""
    return out


def stages(instrs):
    st = []
    for ins, rest in instrs:
        if ins == "FROM":
            st.append({"from": rest, "instrs": []})
        elif st:
            st[-1]["instrs"].append((ins, rest))
    return st


def apt_packages(stage):
    pkgs = set()
    for ins, rest in stage["instrs"]:
        if ins != "RUN":
            continue
        for cmd in re.split(r"&&|;", rest):
            w = shlex.split(cmd)
            if len(w) >= 2 and w[0] == "apt-get" and "install" in w:
                pkgs |= {x for x in w[w.index("install") + 1:] if not x.startswith("-")}
    return pkgs


def needed_packages(binary):
    """Debian packages owning the libraries binary links directly (its DT_NEEDED, located
    by ldd, owner from dpkg -S). Their own dependencies come with them through apt."""
    dyn = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True,
                         check=True).stdout
    needed = set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dyn))
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    where = dict(re.findall(r"^\s*(\S+) => (/\S+)", out, re.M))
    libs = [where.get(n, n) for n in sorted(needed)]
    pkgs = {}
    for lib in libs:
        real = os.path.realpath(lib)
        for cand in (lib, real, real.replace("/usr/lib/", "/lib/", 1),
                     lib.replace("/lib/", "/usr/lib/", 1)):
            r = subprocess.run(["dpkg", "-S", cand], capture_output=True, text=True)
            if r.returncode == 0:
                pkgs[os.path.basename(lib)] = r.stdout.split(":", 1)[0]
                break
        else:
            pkgs[os.path.basename(lib)] = None
    return pkgs


def check_docker(c, dk_dir, destdir):
    print("== Dockerfiles")
    for name, nonroot in (("tvn.Dockerfile", True), ("agent.Dockerfile", False)):
        st = stages(parse_dockerfile(os.path.join(dk_dir, name)))
        c.check(len(st) == 2, f"{name}: two stages")
        if len(st) != 2:
            continue
        build, run = st
        bf = build["from"].split()
        c.check(bf[0] == "debian:bookworm-slim" and len(bf) == 3 and bf[1].upper() == "AS",
                f"{name}: build stage FROM debian:bookworm-slim AS <name>")
        c.check(run["from"] == "debian:bookworm-slim", f"{name}: runtime stage FROM debian:bookworm-slim")
        runs = " ".join(r for i, r in build["instrs"] if i == "RUN")
        c.check(re.search(r"\bmake\b", runs) and re.search(
            r"make\b[^&;]*\binstall\b[^&;]*DESTDIR=/out\b[^&;]*PREFIX=/usr/local", runs),
            f"{name}: build stage runs make and make install DESTDIR=/out PREFIX=/usr/local")
        rpkgs = apt_packages(run)
        c.check(rpkgs and not any(p.endswith("-dev") or p in ("gcc", "clang", "make")
                                  for p in rpkgs),
                f"{name}: runtime stage installs only runtime libraries {sorted(rpkgs)}")
        users = [r for i, r in run["instrs"] if i == "USER"]
        user = users[-1].split(":")[0] if users else "0"
        if nonroot:
            c.check(user not in ("0", "root"), f"{name}: runs as non-root USER ({user})")
        else:
            c.check(bool(users), f"{name}: USER stated explicitly ({user}, needs root + caps)")
        copies = [r for i, r in run["instrs"] if i == "COPY" and r.startswith("--from=")]
        bins = []
        for cp in copies:
            w = cp.split()
            c.check(w[0] == "--from=" + bf[2], f"{name}: COPY --from={bf[2]}")
            bins += w[1:-1]
        c.check(bool(bins) and all(b.startswith("/out/usr/local/bin/") for b in bins),
                f"{name}: copies binaries from /out/usr/local/bin {bins}")
        if not destdir:
            continue
        for b in bins:
            path = os.path.join(destdir, b[len("/out/"):])
            ok = c.check(os.access(path, os.X_OK), f"{name}: {b} exists in the DESTDIR tree")
            if not ok:
                continue
            need = needed_packages(path)
            if any(lib.startswith(("libasan", "libubsan", "libtsan")) for lib in need):
                # make check SAN=1: the sanitizer runtimes are not what an image ships.
                print(f"  skip  {name}: {os.path.basename(b)} is a sanitizer build, "
                      "libraries not compared with the runtime stage")
                continue
            missing = sorted(f"{lib} ({pkg})" for lib, pkg in need.items()
                             if pkg not in rpkgs and pkg not in BASE_PACKAGES)
            c.check(not missing, f"{name}: runtime stage provides every library of "
                    f"{os.path.basename(b)} {missing or ''}")


# --- mutations: every check above must be able to fail ----------------------------

def find_kind(files, kind):
    return next(objects(files, kind))


def agent_container(files):
    return find_kind(files, "DaemonSet")["spec"]["template"]["spec"]["containers"][0]


def tvn_container(files):
    return find_kind(files, "StatefulSet")["spec"]["template"]["spec"]["containers"][0]


def _drop_mount(files, path):
    ac = agent_container(files)
    vols = find_kind(files, "DaemonSet")["spec"]["template"]["spec"]["volumes"]
    names = {v["name"] for v in vols if (v.get("hostPath") or {}).get("path") == path}
    for m in ac["volumeMounts"]:
        if m["name"] in names:
            m["readOnly"] = False


def _set_args(cont, flag, values):
    args = [str(a) for a in cont["args"]]
    out = []
    i = 0
    while i < len(args):
        if args[i] == flag:
            i += 2
            continue
        out.append(args[i])
        i += 1
    for v in values:
        out += [flag, v]
    cont["args"] = out


MUTATIONS = [
    ("hostPID removed", "agent: hostPID: true",
     lambda f: find_kind(f, "DaemonSet")["spec"]["template"]["spec"].pop("hostPID")),
    ("/proc writable", "agent: host /proc mounted read-only", lambda f: _drop_mount(f, "/proc")),
    ("btf writable", "agent: host /sys/kernel/btf mounted read-only",
     lambda f: _drop_mount(f, "/sys/kernel/btf")),
    ("toleration with a key", "agent: a toleration with operator Exists",
     lambda f: find_kind(f, "DaemonSet")["spec"]["template"]["spec"].__setitem__(
         "tolerations", [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}])),
    ("NET_ADMIN added", "agent: capabilities.add is exactly",
     lambda f: agent_container(f)["securityContext"]["capabilities"]["add"].append("NET_ADMIN")),
    ("privileged", "agent: privileged: false",
     lambda f: agent_container(f)["securityContext"].__setitem__("privileged", True)),
    ("no limits", "agent: resources.limits has cpu and memory",
     lambda f: agent_container(f)["resources"].pop("limits")),
    ("probe path", "agent: livenessProbe is httpGet /healthz",
     lambda f: agent_container(f)["livenessProbe"]["httpGet"].__setitem__("path", "/")),
    ("scrape port", "agent: prometheus.io scrape",
     lambda f: find_kind(f, "DaemonSet")["spec"]["template"]["metadata"]["annotations"].__setitem__(
         "prometheus.io/port", "9999")),
    ("node name", "agent: NODE_NAME from fieldRef spec.nodeName",
     lambda f: agent_container(f)["env"][0]["valueFrom"]["fieldRef"].__setitem__(
         "fieldPath", "metadata.name")),
    ("--node literal", "agent: --node $(NODE_NAME)",
     lambda f: _set_args(agent_container(f), "--node", ["node-1"])),
    ("tvn list short", "agent: --tvn lists every tvn pod",
     lambda f: find_kind(f, "StatefulSet")["spec"].__setitem__("replicas", 3)),
    ("service not headless", "tvn: Service is headless",
     lambda f: find_kind(f, "Service")["spec"].__setitem__("clusterIP", "10.96.0.10")),
    ("no udp 4789", "tvn: Service exposes UDP 4789",
     lambda f: find_kind(f, "Service")["spec"]["ports"][0].__setitem__("protocol", "TCP")),
    ("tvn as root", "tvn: runs as a non-root uid",
     lambda f: tvn_container(f)["securityContext"].__setitem__("runAsUser", 0)),
    ("tvn cap", "tvn: no capability added",
     lambda f: tvn_container(f)["securityContext"]["capabilities"].__setitem__("add", ["NET_RAW"])),
    ("no pvc", "tvn: /var/lib/tvn is a PVC",
     lambda f: find_kind(f, "StatefulSet")["spec"].pop("volumeClaimTemplates")),
]


def run_mutations(c, files, kust, k8s_dir):
    print("== mutations (each broken property must be reported)")
    for label, expect, mutate in MUTATIONS:
        m = copy.deepcopy(files)
        mutate(m)
        inner = Checker()
        saved = sys.stdout
        sys.stdout = open(os.devnull, "w")
        try:
            check_k8s(inner, m, kust, k8s_dir, {})
        finally:
            sys.stdout.close()
            sys.stdout = saved
        hit = any(f.startswith(expect) for f in inner.failures)
        c.check(hit, f"mutation '{label}' is caught by '{expect}'")
    # kustomization must list every file
    k2 = copy.deepcopy(kust)
    k2["resources"] = k2["resources"][1:]
    inner = Checker()
    saved = sys.stdout
    sys.stdout = open(os.devnull, "w")
    try:
        check_k8s(inner, files, k2, k8s_dir, {})
    finally:
        sys.stdout.close()
        sys.stdout = saved
    c.check(any(f.startswith("kustomization resources") for f in inner.failures),
            "mutation 'file missing from kustomization' is caught")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=os.path.join(os.path.dirname(__file__), "..", ".."))
    ap.add_argument("--destdir")
    ap.add_argument("--help-text", action="append", default=[], metavar="PROG=FILE")
    ap.add_argument("--mutations", action="store_true")
    a = ap.parse_args()

    helps = {}
    for h in a.help_text:
        prog, path = h.split("=", 1)
        with open(path) as f:
            helps[prog] = set(re.findall(r"--[a-z0-9][a-z0-9-]*", f.read()))

    c = Checker()
    k8s_dir = os.path.join(a.root, "deploy", "k8s")
    files, kust = load_k8s(k8s_dir)
    check_k8s(c, files, kust, k8s_dir, helps)
    check_systemd(c, os.path.join(a.root, "deploy", "systemd"), helps)
    check_docker(c, os.path.join(a.root, "deploy", "docker"), a.destdir)
    if a.mutations:
        run_mutations(c, files, kust, k8s_dir)
    print(f"{c.count - len(c.failures)}/{c.count} checks passed")
    if c.failures:
        print("failed:")
        for f in c.failures:
            print(f"  {f}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
