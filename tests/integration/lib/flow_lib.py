#!/usr/bin/env python3
"""tests/integration/lib/flow_lib.py FLOWS PORT - prints the `lib` the agent's metadata
gave the flow with PORT at either end in the tvn's flow log (JSON lines; the metadata is
under "meta"), or nothing. Used to check that `lib` names the stack that was hooked."""
import json
import sys

port = int(sys.argv[2])
with open(sys.argv[1]) as f:
    for line in f:
        if not line.strip():
            continue
        flow = json.loads(line)
        lib = flow.get("meta", {}).get("lib")
        if port in (flow.get("sport"), flow.get("dport")) and lib:
            print(lib)
            break
