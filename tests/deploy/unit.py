#!/usr/bin/env python3
"""tests/deploy/unit.py - reads a systemd service unit and prints how test_units.sh runs
it without systemd, as shell assignments:

  unit.py UNIT --env-dir DIR

  EXEC=(...)        ExecStart= with $VAR / ${VAR} from the EnvironmentFile (found in DIR
                    as NAME.env for /etc/default/NAME), split as systemd splits them
  USER_ID           User= (root: 0); DynamicUser=yes: a free uid of systemd's dynamic
                    range (61184..65519)
  CAPS AMBIENT      CapabilityBoundingSet= / AmbientCapabilities= as setpriv lists
  NNP               NoNewPrivileges=
  STATE_DIR STATE_MODE   StateDirectory= / StateDirectoryMode=
  READ_ONLY_ROOT RW_PATHS   ProtectSystem=strict, ReadWritePaths=
  STOP_SECONDS      TimeoutStopSec= (KillSignal= must be SIGTERM)
  UMASK             UMask=
A directive of the [Service] section that changes how the program runs and is not
translated here (nor listed as checked by systemd-analyze only) makes it exit 2."""
import argparse
import os
import pwd
import re
import shlex
import sys

# Sandboxing that only systemd applies; `systemd-analyze verify` checks that they parse.
VERIFIED_ONLY = {"ProtectHome", "PrivateTmp", "PrivateDevices", "ProtectKernelTunables",
                 "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups",
                 "ProtectClock", "ProtectHostname", "ProtectProc", "RestrictNamespaces",
                 "RestrictRealtime", "RestrictSUIDSGID", "LockPersonality",
                 "MemoryDenyWriteExecute", "SystemCallArchitectures", "SystemCallFilter",
                 "SystemCallErrorNumber", "RestrictAddressFamilies", "LimitNOFILE",
                 "LimitMEMLOCK", "Restart", "RestartSec", "Type", "Group", "LoadCredential"}
TRANSLATED = {"ExecStart", "User", "DynamicUser", "EnvironmentFile", "CapabilityBoundingSet",
              "AmbientCapabilities", "NoNewPrivileges", "StateDirectory",
              "StateDirectoryMode", "ProtectSystem", "ReadWritePaths", "KillSignal",
              "TimeoutStopSec", "UMask"}


def die(msg):
    print(f"unit.py: {msg}", file=sys.stderr)
    sys.exit(2)


def parse(path):
    svc, section, cont = {}, None, ""
    for raw in open(path):
        line = raw.rstrip("\n")
        if cont:
            line, cont = cont + " " + line.strip(), ""
        if line.endswith("\\"):
            cont = line[:-1]
            continue
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        m = re.fullmatch(r"\[(\w+)\]", line)
        if m:
            section = m.group(1)
            continue
        k, _, v = line.partition("=")
        if section == "Service":
            svc[k.strip()] = v.strip()  # the last assignment wins
    return svc


def caps(v):
    names = [c.lower().removeprefix("cap_") for c in v.split()]
    return ",".join(["-all"] + ["+" + n for n in names])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("unit")
    p.add_argument("--env-dir", required=True)
    a = p.parse_args()
    svc = parse(a.unit)
    for k in svc:
        if k not in TRANSLATED | VERIFIED_ONLY:
            die(f"[Service] {k}= is not translated")
    env = {}
    ef = svc.get("EnvironmentFile", "").lstrip("-")
    if ef:
        f = os.path.join(a.env_dir, os.path.basename(ef) + ".env")
        if not os.path.exists(f):
            die(f"EnvironmentFile {ef}: no {f}")
        for line in open(f):
            line = line.strip()
            if line and not line.startswith("#"):
                k, _, v = line.partition("=")
                env[k] = v
    words = []
    for w in shlex.split(svc["ExecStart"]):
        m = re.fullmatch(r"\$(\w+)", w)
        if m:  # unbraced: split on white space
            words += env.get(m.group(1), "").split()
        else:
            words.append(re.sub(r"\$\{(\w+)\}", lambda m: env.get(m.group(1), ""), w))
    if svc.get("DynamicUser") == "yes":
        used = {u.pw_uid for u in pwd.getpwall()}
        uid = next(u for u in range(61184, 65520) if u not in used)
    else:
        user = svc.get("User", "root")
        uid = pwd.getpwnam(user).pw_uid
    if svc.get("KillSignal", "SIGTERM") != "SIGTERM":
        die("KillSignal= other than SIGTERM")
    stop = svc.get("TimeoutStopSec", "90")
    m = re.fullmatch(r"(\d+)(s|min)?", stop) or die(f"TimeoutStopSec={stop}")
    seconds = int(m.group(1)) * (60 if m.group(2) == "min" else 1)
    out = {
        "USER_ID": str(uid),
        "CAPS": caps(svc.get("CapabilityBoundingSet", "")) if "CapabilityBoundingSet" in svc else "+all",
        "AMBIENT": caps(svc.get("AmbientCapabilities", "")),
        "NNP": "1" if svc.get("NoNewPrivileges") == "yes" else "0",
        "STATE_DIR": svc.get("StateDirectory", ""),
        "STATE_MODE": svc.get("StateDirectoryMode", "0755"),
        "READ_ONLY_ROOT": "1" if svc.get("ProtectSystem") == "strict" else "0",
        "STOP_SECONDS": str(seconds),
        "UMASK": svc.get("UMask", "0022"),
    }
    if svc.get("ProtectSystem") not in (None, "strict"):
        die(f"ProtectSystem={svc['ProtectSystem']} is not translated")
    print("EXEC=(" + " ".join(shlex.quote(w) for w in words) + ")")
    for k, v in out.items():
        print(f"{k}={shlex.quote(v)}")
    print("RW_PATHS=(" + " ".join(shlex.quote(x) for x in svc.get("ReadWritePaths", "").split()) + ")")


if __name__ == "__main__":
    main()
