#!/usr/bin/env bash
# tests/deploy/test_daemonset.sh - the Kubernetes deployment, run for real on one node:
# the images `make images` builds from this tree, started exactly as
# deploy/k8s/agent-daemonset.yaml and tvn-statefulset.yaml specify (tests/deploy/pod.py
# translates every field of the pod template into `podman run` arguments: host PID
# namespace, capabilities, read-only root, user, mounts, env, args, limits), next to
# application containers with libssl files of their own.
#   - one network namespace per pod (ecvd-*) on a bridge in ecvd-hub (10.244.0.0/24, the
#     "node"), the tvn pods' DNS names (tvn-N.tvn.ecv.svc) in the agent's /etc/hosts;
#   - both tvn replicas (StatefulSet replicas: 2) and the agent answer their manifests'
#     liveness/readiness probes (httpGet, from the node's address);
#   - capability minimality: the agent is run with each added capability dropped in
#     turn; every capability it captures without must be one kept for other kernels
#     (KEPT_ELSEWHERE, with the reason), every other one must be needed;
#   - with the manifest's set: an nginx container serves TLS, a curl container and a
#     python3 ssl container each make a request; the agent finds their libssl through
#     /proc/PID/root (no --lib); nginx is restarted (new PID, same image) and hooked again
#     (the delay is printed); a kept-open python connection is ended by the agent's
#     SIGTERM (`podman stop -t terminationGracePeriodSeconds`): its FINs and end records
#     reach the tvn and the agent exits 0;
#   - the tvns' pcaps (tshark, tests/integration/lib/streams.py) hold every request and
#     response exactly once, complete in both directions; their flow logs carry the
#     container id and the process name of the ends.
# Skips (77) only when no container engine can run here. Runs under the global test
# lock when called by hand: flock /tmp/ecv-itest.lock bash tests/deploy/test_daemonset.sh
. "$(dirname "$0")/../integration/lib/harness.bash"
cd "$HARNESS_ROOT" || exit 1

DS=deploy/k8s/agent-daemonset.yaml
STS=deploy/k8s/tvn-statefulset.yaml
POD="python3 tests/deploy/pod.py"
STREAMS=tests/integration/lib/streams.py
LABEL=ecv.test=deploy
NODE=node-a
NET=10.244.0
TLS_PORT=8443
# Capabilities the manifest keeps although this machine does not need them, and why
# (docs/deploy.md says the same).
declare -A KEPT_ELSEWHERE=(
	[SYS_RESOURCE]="RLIMIT_MEMLOCK for BPF maps on kernels < 5.11; not in this host's bounding set, so podman drops it anyway"
)

[ "$(id -u)" = 0 ] || skip "needs root (containers with BPF capabilities, network namespaces)"
need ip nsenter curl tshark python3 openssl flock
python3 -c 'import yaml' 2>/dev/null || skip "python3-yaml missing (make deps)"
harness_init ecvd
T=$HARNESS_TMP
chmod 0755 "$T"

# --- images ------------------------------------------------------------------------
note "make images (installs podman and builds the Debian base when needed)"
start=$SECONDS
if ! CONTAINER_ENGINE=podman bash tools/images.sh >"$T/images.log" 2>&1; then
	tail -n 20 "$T/images.log"
	if ! command -v podman >/dev/null || ! podman info >/dev/null 2>&1; then
		skip "no container engine can run here (podman missing or 'podman info' fails)"
	fi
	fail "make images failed"
fi
note "images built in $((SECONDS - start)) s"
podman run --rm --network=none --entrypoint /bin/true "$($POD image $DS DaemonSet)" ||
	skip "podman cannot start a container here"
start=$SECONDS
mkdir "$T/empty"
for app in nginx curl python; do
	podman build -q --network=host -f tests/deploy/apps.Dockerfile --target "$app" \
		-t "localhost/ecv-test-$app:latest" "$T/empty" >"$T/apps.log" 2>&1 ||
		{ cat "$T/apps.log"; fail "cannot build the $app test image"; }
done
note "application images built in $((SECONDS - start)) s"

ctr_cleanup() {
	podman ps -aq --filter "label=$LABEL" | xargs -r podman stop -t 10 >/dev/null 2>&1
	podman ps -aq --filter "label=$LABEL" | xargs -r podman rm -f >/dev/null 2>&1
}
ctr_cleanup
on_exit ctr_cleanup

# --- the node's pod network ----------------------------------------------------------
harness_ns ecvd-hub
ip -n ecvd-hub link add br0 type bridge
ip -n ecvd-hub addr add "$NET.1/24" dev br0
ip -n ecvd-hub link set br0 up
declare -A IP=([agent]=2 [tvn-0]=10 [tvn-1]=11 [nginx]=20 [curl]=30 [python]=31)
for pod in "${!IP[@]}"; do
	harness_ns "ecvd-$pod"
	ip link add "v-$pod" netns ecvd-hub type veth peer name eth0 netns "ecvd-$pod"
	ip -n ecvd-hub link set "v-$pod" master br0 up
	ip -n "ecvd-$pod" addr add "$NET.${IP[$pod]}/24" dev eth0
	ip -n "ecvd-$pod" link set eth0 up
done
HUB=(nsenter --net=/run/netns/ecvd-hub --)
# A kubelet probe: httpGet from the node to the pod's address.
probe() { "${HUB[@]}" curl -sf -m 2 "http://$NET.$1:$2$3" >/dev/null; }
probes_answer() { # pod manifest kind
	local kind path port
	while read -r kind path port; do
		wait_for 20 probe "${IP[$1]}" "$port" "$path" ||
			fail "$1: $kind probe GET $path on port $port does not answer"
		echo "ok: $1 $kind probe GET http://$NET.${IP[$1]}:$port$path answers"
	done < <($POD probes "$2" "$3")
}

# --- tvn pods, as the StatefulSet specifies them -------------------------------------
mkdir -p "$T/secret"
openssl rand -hex 32 >"$T/secret/token"
for i in 0 1; do
	mapfile -t args < <($POD run $STS StatefulSet --name "tvn-$i" --node $NODE \
		--netns "/run/netns/ecvd-tvn-$i" --volumes "$T/tvn-$i" --pod-ip "$NET.${IP[tvn-$i]}" \
		--secret "tvn-http-token=$T/secret") || fail "pod.py could not translate $STS"
	echo "podman run ${args[*]}"
	podman run -d --label "$LABEL" "${args[@]}" >/dev/null || fail "tvn-$i did not start"
done
for i in 0 1; do probes_answer "tvn-$i" $STS StatefulSet; done
for i in 0 1; do
	[ "$(podman top "tvn-$i" huser capeff 2>/dev/null | awk 'NR == 2 {print $1 "/" $2}')" = \
		"65532/none" ] || fail "tvn-$i: $(podman top "tvn-$i" huser capeff) (want uid 65532, no capability)"
done
echo "ok: both tvns run as uid 65532 with no capability"

# --- the application: nginx with its own libssl ---------------------------------------
harness_cert "$T"
mkdir -p "$T/nginx" "$T/sync"
cp "$T/cert.pem" "$T/key.pem" "$T/nginx/"
cat >"$T/nginx/nginx.conf" <<EOF
worker_processes 1;
error_log stderr;
pid /run/nginx.pid;
events {}
http {
	access_log off;
	server {
		listen $TLS_PORT ssl;
		ssl_certificate /cfg/cert.pem;
		ssl_certificate_key /cfg/key.pem;
		keepalive_timeout 300s;
		location / { return 200 "answer to \$uri\n"; }
	}
}
EOF
chmod -R a+rX "$T/nginx"
chmod 0777 "$T/sync"
podman run -d --label "$LABEL" --name ecvd-nginx --network=ns:/run/netns/ecvd-nginx \
	-v "$T/nginx:/cfg:ro" localhost/ecv-test-nginx -c /cfg/nginx.conf -g 'daemon off;' \
	>/dev/null || fail "nginx container did not start"
nginx_up() { "${HUB[@]}" bash -c "exec 3<>/dev/tcp/$NET.${IP[nginx]}/$TLS_PORT"; }
wait_for 20 nginx_up || { podman logs ecvd-nginx; fail "nginx does not listen"; }
ctr_pid() { podman inspect -f '{{.State.Pid}}' "$1"; }

# --- the agent, as the DaemonSet specifies it ----------------------------------------
# start_agent [CAP...]: the DaemonSet's pod minus the capabilities named.
agent_args() {
	local d drops=()
	for d in "$@"; do drops+=(--drop-cap "$d"); done
	$POD run $DS DaemonSet --name ecvd-agent --node $NODE --netns /run/netns/ecvd-agent \
		--volumes "$T/agent" --pod-ip "$NET.${IP[agent]}" \
		--add-host "tvn-0.tvn.ecv.svc:$NET.${IP[tvn-0]}" \
		--add-host "tvn-1.tvn.ecv.svc:$NET.${IP[tvn-1]}" "${drops[@]}"
}
start_agent() {
	mapfile -t args < <(agent_args "$@") || fail "pod.py could not translate $DS"
	echo "podman run ${args[*]}"
	podman run -d --label "$LABEL" "${args[@]}" >/dev/null || fail "the agent container did not start"
}
agent_log() { podman logs ecvd-agent 2>&1; }
# SIGTERM first: a killed agent lingers while the kernel unregisters its uprobes, and
# `podman rm -f` gives up on it.
agent_rm() {
	podman stop -t 30 ecvd-agent >/dev/null 2>&1
	wait_for 30 podman rm -f ecvd-agent || fail "cannot remove the agent container"
}
hooked() { agent_log | grep -q "hooked openssl /proc/$1/root/.*libssl"; }
running() { [ "$(podman inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" = true ]; }
agent_events() {
	"${HUB[@]}" curl -sf -m 2 "http://$NET.${IP[agent]}:9435/metrics" |
		awk '/^ecv_agent_events_total/ {s += $2} END {print s + 0}'
}
# One curl request from its own container: "curl -sk ... URL" prints the answer.
curl_req() { # name path body
	podman run --rm --label "$LABEL" --name "$1" --network=ns:/run/netns/ecvd-curl \
		localhost/ecv-test-curl -sk --http1.1 --max-time 20 --data-binary "$3" \
		"https://$NET.${IP[nginx]}:$TLS_PORT$2"
}

# Captures at all with this capability set? Hooks nginx (its libssl through
# /proc/PID/root) and counts SSL events of one request.
captures() {
	local before pid
	# Ready, or exited (a capability missing at load time): no need to wait longer.
	wait_for 20 eval 'probe "${IP[agent]}" 9435 /healthz || ! running ecvd-agent'
	probe "${IP[agent]}" 9435 /healthz || return 1
	pid=$(ctr_pid ecvd-nginx)
	wait_for 5 hooked "$pid" || return 1
	before=$(agent_events)
	curl_req ecvd-curl-caps /caps caps >/dev/null || return 1
	wait_for 5 eval '[ "$(agent_events)" -gt "$before" ]'
}

note "capability minimality: the agent with each added capability dropped in turn (at ${SECONDS} s)"
mapfile -t CAPS < <($POD caps $DS DaemonSet)
needed=() unneeded=()
for cap in "${CAPS[@]}"; do
	start_agent "$cap" >/dev/null
	if captures; then
		unneeded+=("$cap")
		echo "without $cap: captures"
	else
		needed+=("$cap")
		echo "without $cap: does not capture: $(agent_log | grep -m1 -E ': (error|warning):' || echo "no hook or no event")"
	fi
	agent_rm
done
echo "needed here: ${needed[*]:-none}; not needed here: ${unneeded[*]:-none}"
for cap in "${unneeded[@]}"; do
	[ -n "${KEPT_ELSEWHERE[$cap]:-}" ] ||
		fail "the DaemonSet adds $cap, which the agent does not need: remove it (or say in KEPT_ELSEWHERE and docs/deploy.md why another kernel does)"
	echo "kept: $cap: ${KEPT_ELSEWHERE[$cap]}"
done

note "the agent with the DaemonSet's exact pod spec (at ${SECONDS} s)"
start_agent
probes_answer agent $DS DaemonSet
running ecvd-agent || { agent_log; fail "the agent exited"; }
agent_pid=$(ctr_pid ecvd-agent)
echo "agent: $(grep -E '^Cap(Eff|Bnd)' "/proc/$agent_pid/status" | tr '\n' ' ')"
nginx_pid=$(ctr_pid ecvd-nginx)
wait_for 15 hooked "$nginx_pid" || { agent_log; fail "nginx's libssl (/proc/$nginx_pid/root/...) never hooked"; }
agent_log | grep -q -- '--lib' && fail "the agent was given --lib"
echo "ok: $(agent_log | grep -o "hooked openssl /proc/$nginx_pid/root[^ ]*")"
LIBSSL_PATH=$(agent_log | grep -o "hooked openssl /proc/$nginx_pid/root[^ ]*" | head -n 1 | sed "s|^hooked openssl /proc/$nginx_pid/root||")
nginx_lib=$(stat -L -c %d:%i "/proc/$nginx_pid/root$LIBSSL_PATH")

# A client in its own container that waits (tls_client.py, or curl reading its body
# from a FIFO) until the agent hooked it, so its own end is captured as well.
ID=$$-$RANDOM
py_client() { # name path body [hold]
	rm -f "$T/sync/$1".*
	podman run -d --label "$LABEL" --name "$1" --network=ns:/run/netns/ecvd-python \
		-v "$T/sync:/sync" -v "$HARNESS_ROOT/tests/deploy/tls_client.py:/tls_client.py:ro" \
		localhost/ecv-test-python /tls_client.py "$NET.${IP[nginx]}" $TLS_PORT "$2" "$3" \
		/sync "$1" ${4:-} >/dev/null || fail "$1 did not start"
	wait_for 20 test -e "$T/sync/$1.ready" || { podman logs "$1"; fail "$1 not ready"; }
	local pid
	pid=$(ctr_pid "$1")
	wait_for 15 hooked "$pid" || { agent_log | tail; fail "$1's libssl (pid $pid) never hooked"; }
	echo "ok: $1: $(agent_log | grep -o "hooked openssl /proc/$pid/root[^ ]*")"
	touch "$T/sync/$1.go"
}
curl_client() { # name path body
	local pid
	rm -f "$T/sync/$1.body"
	mkfifo -m 0666 "$T/sync/$1.body"
	podman run -d --label "$LABEL" --name "$1" --network=ns:/run/netns/ecvd-curl \
		-v "$T/sync:/sync" localhost/ecv-test-curl -sk --http1.1 --max-time 30 \
		--data-binary "@/sync/$1.body" "https://$NET.${IP[nginx]}:$TLS_PORT$2" >/dev/null ||
		fail "$1 did not start"
	wait_for 10 eval "pid=\$(ctr_pid $1) && [ \"\$pid\" -gt 0 ] && grep -q libssl /proc/\$pid/maps" ||
		fail "$1: curl never mapped libssl"
	wait_for 15 hooked "$pid" || { agent_log | tail; fail "$1's libssl (pid $pid) never hooked"; }
	echo "ok: $1: $(agent_log | grep -o "hooked openssl /proc/$pid/root[^ ]*")"
	printf '%s' "$3" >"$T/sync/$1.body"
}
# Which container each client was (their flow records are read after they are gone).
answered() { # name path
	[ "$(podman wait "$1")" = 0 ] || { podman logs "$1"; fail "$1 failed"; }
	echo "$2 $(podman inspect -f '{{.Id}}' "$1")" >>"$T/clients"
	podman logs "$1" | grep -qF "answer to $2" || fail "$1 did not get 'answer to $2'"
	podman rm "$1" >/dev/null
}

declare -A REQ=()
REQ[curl]=/ecvd-curl-$ID
REQ[python]=/ecvd-python-$ID
REQ[restart]=/ecvd-after-restart-$ID
REQ[held]=/ecvd-held-$ID
curl_client ecvd-curl-1 "${REQ[curl]}" "body-curl-$ID"
answered ecvd-curl-1 "${REQ[curl]}"
py_client ecvd-py-1 "${REQ[python]}" "body-python-$ID"
answered ecvd-py-1 "${REQ[python]}"

note "restart the nginx container (same image, new PID)"
podman restart -t 10 ecvd-nginx >/dev/null || fail "podman restart ecvd-nginx"
new_pid=$(ctr_pid ecvd-nginx)
[ "$new_pid" != "$nginx_pid" ] || fail "nginx kept PID $nginx_pid across the restart"
# The agent knows a library by device and inode as seen through /proc/PID/root: a
# restarted container that mounts the same storage again maps the very file whose
# probes are still attached (nothing to do); another file is hooked anew by discovery.
new_lib=$(stat -L -c %d:%i "/proc/$new_pid/root$LIBSSL_PATH")
if [ "$new_lib" = "$nginx_lib" ]; then
	echo "ok: restarted nginx (pid $new_pid) maps the same libssl ($new_lib) whose probes stay attached: hooked from its first instruction"
else
	wait_for 15 hooked "$new_pid" || { agent_log | tail; fail "restarted nginx (pid $new_pid) never hooked"; }
	started=$(podman inspect -f '{{.State.StartedAt}}' ecvd-nginx 2>/dev/null)
	hook_ts=$(podman logs -t ecvd-agent 2>&1 | grep "hooked openssl /proc/$new_pid/root" | head -n 1 | awk '{print $1}')
	echo "ok: restarted nginx (pid $new_pid, libssl $new_lib) hooked again: started $started, hooked $hook_ts (discovery rescans every second)"
fi
wait_for 20 nginx_up || fail "restarted nginx does not listen"
curl_client ecvd-curl-2 "${REQ[restart]}" "body-restart-$ID"
answered ecvd-curl-2 "${REQ[restart]}"

note "SIGTERM to the agent (podman stop -t terminationGracePeriodSeconds) with a connection open"
py_client ecvd-py-2 "${REQ[held]}" "body-held-$ID" hold
wait_for 20 test -e "$T/sync/ecvd-py-2.answered" || { podman logs ecvd-py-2; fail "held connection not answered"; }
grace=$($POD grace $DS DaemonSet)
start=$SECONDS
podman stop -t "$grace" ecvd-agent >/dev/null || fail "podman stop ecvd-agent"
rc=$(podman inspect -f '{{.State.ExitCode}}' ecvd-agent)
echo "agent stopped in $((SECONDS - start)) s (grace ${grace} s), exit status $rc"
[ "$rc" = 0 ] || { agent_log | tail; fail "the agent exited $rc on SIGTERM (want 0)"; }
agent_log >"$T/agent.log"
touch "$T/sync/ecvd-py-2.release"
answered ecvd-py-2 "${REQ[held]}"

# The tvns flush on SIGTERM too.
for i in 0 1; do
	podman stop -t "$($POD grace $STS StatefulSet)" "tvn-$i" >/dev/null
	rc=$(podman inspect -f '{{.State.ExitCode}}' "tvn-$i")
	[ "$rc" = 0 ] || { podman logs "tvn-$i" | tail; fail "tvn-$i exited $rc on SIGTERM"; }
done
echo "ok: both tvns exit 0 on SIGTERM"

# --- what the tvns wrote -------------------------------------------------------------
note "the tvns' pcaps and flow logs (at ${SECONDS} s)"
ls -l "$T"/tvn-*/data/
python3 - "$T" "$STREAMS" "$NET.${IP[nginx]}" "$TLS_PORT" "$ID" \
	"$(podman inspect -f '{{.Id}}' ecvd-nginx)" <<'EOF' || fail "the tvns' output (see above)"
import glob, json, os, subprocess, sys
sys.path.insert(0, os.path.dirname(sys.argv[2]))
from streams import read_directions, Stream

tmp, _, server, port, ident, nginx_id = sys.argv[1:]
bad = []
def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what)
    if not cond:
        bad.append(what)

# Every direction of every connection to nginx, over both tvns' pcaps.
flows = {}
for pcap in sorted(glob.glob(f"{tmp}/tvn-*/data/*.pcap*")):
    for key, d in read_directions(pcap, lambda k: port in (k[1], k[3])).items():
        check(key not in flows, f"{key} in one tvn only ({pcap})")
        flows[key] = Stream(d)
reqs = {"curl": "curl", "python": "python", "restart": "after-restart", "held": "held"}
bodies = {"curl": "curl", "python": "python", "restart": "restart", "held": "held"}
for name, tag in reqs.items():
    path = f"/ecvd-{tag}-{ident}"
    req = f"POST {path} HTTP/1.1".encode()
    body = f"body-{bodies[name]}-{ident}".encode()
    ans = f"answer to {path}".encode()
    up = [(k, s) for k, s in flows.items() if k[3] == port and req in s.data()]
    check(len(up) == 1, f"{name}: the request {path} is in exactly one connection ({len(up)})")
    if len(up) != 1:
        continue
    k, s = up[0]
    data = s.data()
    check(data.count(req) == 1 and data.count(body) == 1,
          f"{name}: request line and body once each ({data.count(req)}, {data.count(body)})")
    back = flows.get((k[2], k[3], k[0], k[1]))
    check(back is not None and back.data().count(ans) == 1,
          f"{name}: the answer '{ans.decode()}' once in the reverse direction")
    for key, st in ((k, s), ((k[2], k[3], k[0], k[1]), back)):
        if st is None:
            continue
        check(st.syn and st.fins and st.dup == 0 and not st.holes,
              f"{name}: {key[0]}:{key[1]} -> {key[2]}:{key[3]} syn={int(st.syn)} "
              f"fin={int(bool(st.fins))} dup={st.dup} holes={len(st.holes)}")

# Flow logs: the ends' container ids and process names, the end records.
clients = dict(l.split() for l in open(f"{tmp}/clients"))
recs = []
for fl in glob.glob(f"{tmp}/tvn-*/data/flows.jsonl"):
    recs += [json.loads(l) for l in open(fl)]
for name, tag in reqs.items():
    path = f"/ecvd-{tag}-{ident}"
    ups = [k for k, s in flows.items() if k[3] == port and f"POST {path} ".encode() in s.data()]
    if not ups:
        continue
    k = ups[0]
    r = [r for r in recs if (r["src"], str(r["sport"]), r["dst"], str(r["dport"])) == k]
    check(len(r) == 1, f"{name}: one flow record for {k} ({len(r)})")
    if len(r) != 1:
        continue
    r = r[0]
    ends = r.get("ends") or {}
    cli, srv = ends.get("client", {}), ends.get("server", {})
    want_comm = "python3" if name in ("python", "held") else "curl"
    check(cli.get("comm") == want_comm and cli.get("container") == clients[path],
          f"{name}: client end comm={cli.get('comm')} container={cli.get('container', '')[:12]} "
          f"(want {want_comm} {clients[path][:12]})")
    check(srv.get("comm") == "nginx" and srv.get("container") == nginx_id,
          f"{name}: server end comm={srv.get('comm')} container={srv.get('container', '')[:12]} "
          f"(want nginx {nginx_id[:12]})")
    m = r.get("meta") or {}
    check(m.get("event") == "end" and m.get("node") == "node-a",
          f"{name}: the last record is an end record from node-a ({m.get('event')}, {m.get('node')})")
sys.exit(1 if bad else 0)
EOF
echo "PASS in ${SECONDS} s"
