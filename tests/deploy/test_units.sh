#!/usr/bin/env bash
# tests/deploy/test_units.sh - the collector VM: deploy/systemd/tvn.service and
# ecv-agent.service run as systemd would run them, as far as a host without a running
# systemd allows. Each unit is read (tests/deploy/unit.py), not retyped: its ExecStart
# with $VARS taken from its EnvironmentFile (the shipped deploy/systemd/*.env) and split
# on white space, as its User (DynamicUser=: an unused uid of systemd's dynamic range),
# with its CapabilityBoundingSet and AmbientCapabilities, NoNewPrivileges, its
# StateDirectory (owned by that user, mode StateDirectoryMode) and, in a private mount
# namespace, ProtectSystem=strict (/ read-only) with ReadWritePaths= writable.
#   - a private mount namespace puts `make install`'s binaries at /usr/local/bin, the
#     state directory at /var/lib/tvn, and collector.example.internal (the agent's --tvn
#     in ecv-agent.env) in /etc/hosts; a network namespace (ecvd-vm) holds both units'
#     addresses, 10.0.0.1 (the collector: tvn.env allows 10.0.0.0/8 only) and loopback;
#   - an openssl s_server/s_client exchange in that namespace reaches tvn's pcap in
#     clear; /healthz and /metrics of both answer on the units' addresses;
#   - KillSignal= within TimeoutStopSec=: both exit 0, the flow log has the end record;
#   - systemd-analyze verify accepts both units (their hardening directives parse).
. "$(dirname "$0")/../integration/lib/harness.bash"
cd "$HARNESS_ROOT" || exit 1
UNITS=deploy/systemd
UNIT="python3 tests/deploy/unit.py"

[ "$(id -u)" = 0 ] || skip "needs root (setpriv to the units' users, namespaces, BPF)"
need setpriv unshare nsenter ip openssl curl tshark python3
[ -x "$BUILD/tvn" ] && [ -x "$BUILD/ecv-agent" ] || skip "tvn/ecv-agent not built in $BUILD"
harness_init ecvd-vm
T=$HARNESS_TMP
chmod 0755 "$T"

make -s BUILD="$BUILD" install DESTDIR="$T/root" PREFIX=/usr/local >"$T/install.log" 2>&1 ||
	{ cat "$T/install.log"; fail "make install DESTDIR=$T/root"; }
chmod -R a+rX "$T/root"

# --- systemd-analyze verify ----------------------------------------------------------
if command -v systemd-analyze >/dev/null; then
	mkdir "$T/units"
	for u in tvn ecv-agent; do
		# verify insists that ExecStart= exists: point it at the installed tree.
		sed "s|^ExecStart=/usr/local/bin/|ExecStart=$T/root/usr/local/bin/|" \
			"$UNITS/$u.service" >"$T/units/$u.service"
	done
	systemd-analyze verify "$T/units/tvn.service" "$T/units/ecv-agent.service" \
		>"$T/verify.log" 2>&1 && [ ! -s "$T/verify.log" ] ||
		{ cat "$T/verify.log"; fail "systemd-analyze verify"; }
	echo "ok: systemd-analyze verify tvn.service ecv-agent.service: no complaint"
else
	echo "note: systemd-analyze not installed: directives not verified by systemd"
fi

# --- the VM: one network namespace, one private mount namespace per unit ---------------
harness_ns ecvd-vm
ip -n ecvd-vm addr add 10.0.0.1/32 dev lo
VM=(nsenter --net=/run/netns/ecvd-vm --)
echo "10.0.0.1 collector.example.internal" >"$T/hosts"
cat /etc/hosts >>"$T/hosts"
mkdir -p "$T/state"

# run_unit NAME: starts the unit's ExecStart as the unit says, in the background.
run_unit() {
	local u=$1 cmd
	$UNIT "$UNITS/$u.service" --env-dir "$UNITS" >"$T/$u.plan" || fail "unit.py $u.service"
	echo "$u.service as run here:"
	sed 's/^/    /' "$T/$u.plan"
	# The plan is shell assignments: EXEC (array), USER_ID, CAPS (setpriv list),
	# AMBIENT, NNP, STATE_DIR, STATE_MODE, READ_ONLY_ROOT, RW_PATHS (array), STOP_SECONDS,
	# UMASK.
	# shellcheck disable=SC1090
	. "$T/$u.plan"
	local setup="umask $UMASK
		mount --make-rprivate /
		mount --bind $T/root/usr/local/bin /usr/local/bin
		mount --bind $T/hosts /etc/hosts"
	if [ -n "$STATE_DIR" ]; then
		install -d -o "$USER_ID" -g "$USER_ID" -m "$STATE_MODE" "$T/state/$u"
		setup+="
		[ -d /var/lib/$STATE_DIR ] || { mount -t tmpfs -o mode=0755 tmpfs /var/lib && mkdir /var/lib/$STATE_DIR; }
		mount --bind $T/state/$u /var/lib/$STATE_DIR"
	fi
	if [ "$READ_ONLY_ROOT" = 1 ]; then
		# ProtectSystem=strict: everything read-only but ReadWritePaths= and the API
		# file systems (/proc, /sys, /dev, /run as systemd leaves them).
		setup+="
		for m in \$(findmnt -rn -o TARGET | sort -u); do
			case \$m in /proc*|/sys*|/dev*|/run*) continue ;; esac
			mount -o remount,bind,ro \"\$m\" || echo \"cannot make \$m read-only\"
		done"
		local p
		for p in "${RW_PATHS[@]}"; do
			setup+="
		mount -o remount,bind,rw $p"
		done
	fi
	local priv=(setpriv --reuid="$USER_ID" --regid="$USER_ID" --clear-groups
		--bounding-set="$CAPS" --inh-caps="$AMBIENT" --ambient-caps="$AMBIENT")
	[ "$USER_ID" = 0 ] && priv=(setpriv --bounding-set="$CAPS" --inh-caps="$AMBIENT")
	[ "$NNP" = 1 ] && priv+=(--no-new-privs)
	echo "$setup" >"$T/$u.setup"
	bg "${VM[@]}" unshare --mount --propagation private -- bash -c \
		". $T/$u.setup; exec \"\$@\"" setup "${priv[@]}" -- "${EXEC[@]}" \
		>"$T/$u.log" 2>&1
	eval "PID_${u//-/_}=\$BG_PID STOP_${u//-/_}=\$STOP_SECONDS"
}
http_ok() { "${VM[@]}" curl -sf -m 2 "$1" >/dev/null; }

note "tvn.service"
run_unit tvn
started "$PID_tvn" "$T/tvn.log" 20 "tvn.service" http_ok http://127.0.0.1:8080/healthz
TVN_UID=$USER_ID
tvn_pid=$(pgrep -P "$PID_tvn" -x tvn || echo "$PID_tvn")
status=$(awk '/^(Uid|CapEff|CapBnd|NoNewPrivs):/ {printf "%s %s ", $1, $2}' "/proc/$tvn_pid/status")
echo "tvn: $status"
[[ "$status" == "Uid: $USER_ID CapEff: 0000000000000000 CapBnd: 0000000000000000 NoNewPrivs: 1 " ]] ||
	fail "tvn runs with '$status' (want uid $USER_ID, no capability, no new privileges)"
mount_opts() { awk -v m="$2" '$5 == m { split($6, o, ","); print o[1] }' "/proc/$1/mountinfo"; }
[ "$(mount_opts "$tvn_pid" /)" = ro ] && [ "$(mount_opts "$tvn_pid" /var/lib/tvn)" = rw ] ||
	fail "ProtectSystem=strict: / is $(mount_opts "$tvn_pid" /), /var/lib/tvn $(mount_opts "$tvn_pid" /var/lib/tvn) for tvn (want ro, rw)"
echo "ok: tvn unprivileged ($status); / read-only, /var/lib/tvn writable (ProtectSystem=strict, ReadWritePaths=)"

note "ecv-agent.service"
run_unit ecv-agent
agent_ready() { grep -q 'capturing' "$T/ecv-agent.log"; }
started "$PID_ecv_agent" "$T/ecv-agent.log" 30 "ecv-agent.service" agent_ready
http_ok http://127.0.0.1:9435/healthz || fail "ecv-agent /healthz on 127.0.0.1:9435"
echo "ok: ecv-agent capturing, /healthz answers; $(grep -m1 'shipping to' "$T/ecv-agent.log")"

note "a TLS exchange on the VM"
harness_cert "$T"
ID=$$-$RANDOM
# s_server sends what arrives on its stdin: a FIFO, held open (read-write, so that
# neither end blocks) until the exchange is over.
mkfifo "$T/server.in"
exec 9<>"$T/server.in"
bg "${VM[@]}" openssl s_server -accept 10.0.0.1:8443 -cert "$T/cert.pem" -key "$T/key.pem" \
	-naccept 1 <"$T/server.in" >"$T/server.out" 2>&1
server=$BG_PID
listening() { "${VM[@]}" ss -Hltn 'sport = :8443' | grep -q .; }
started "$server" "$T/server.out" 10 "openssl s_server" listening
# Discovery finds s_server's libssl within a rescan (every second), unless another process
# of the host had it hooked already.
ssl_hooked() { grep -q "hooked .*libssl" "$T/ecv-agent.log"; }
wait_for 15 ssl_hooked || { cat "$T/ecv-agent.log"; fail "the agent never hooked a libssl"; }
echo "answer-$ID" >&9
{
	echo "request-$ID"
	wait_for 10 grep -q "answer-$ID" "$T/client.out"
} | "${VM[@]}" timeout 20 openssl s_client -connect 10.0.0.1:8443 -quiet -no_ign_eof \
	>"$T/client.out" 2>/dev/null
exec 9>&-
grep -q "answer-$ID" "$T/client.out" || fail "s_client got no answer"
stop_pid "$server" 10 TERM

# KillSignal= within TimeoutStopSec=, the agent first (it sends the end records).
for u in ecv_agent tvn; do
	pid_var=PID_$u stop_var=STOP_$u
	stop_pid "${!pid_var}" "${!stop_var}" TERM
	rc=$?
	[ $rc = 0 ] || { tail "$T/${u//_/-}.log"; fail "${u//_/-} exited $rc on SIGTERM (want 0 within ${!stop_var} s)"; }
	echo "ok: ${u//_/-} exits 0 on SIGTERM"
done

pcap=$(ls "$T/state/tvn/"*.pcap* 2>/dev/null | head -n 1)
[ -n "$pcap" ] || fail "no pcap in the state directory ($(ls -l "$T/state/tvn"))"
[ "$(stat -c %u "$pcap")" = "$TVN_UID" ] || fail "$pcap not owned by the unit's user ($TVN_UID)"
for m in "request-$ID" "answer-$ID"; do
	n=$(tshark -r "$pcap" -Y "tcp.port == 8443" -T fields -e tcp.payload 2>/dev/null |
		python3 -c 'import sys; h = sys.stdin.read().replace(":", "").split()
print(b"".join(bytes.fromhex(x) for x in h).count(sys.argv[1].encode()))' "$m")
	[ "$n" = 1 ] || fail "'$m' is in tvn's pcap $n times (want 1)"
done
echo "ok: request and answer each once in $pcap"
grep -q '"event":"end"' "$T/state/tvn/flows.jsonl" ||
	grep -q '"event": *"end"' "$T/state/tvn/flows.jsonl" ||
	fail "no end record in the flow log: $(cat "$T/state/tvn/flows.jsonl")"
echo "ok: the flow log has the end record"
echo PASS
