#!/usr/bin/env bash
# Offline errors a user must see: pcap records larger than any frame tvn delivers
# (here 262000 and 70000 bytes, made below with python3 struct) are counted as malformed
# "truncated" and never reach an output (they once overflowed the VxLAN batch buffer;
# run with BUILD=<a SAN=1 build> to have ASan watch); an output that cannot be written
# (pcap:/dev/full) logs one error, counts its frames as drops, and tvn exits 1 while
# the other output stays complete; a flow log that cannot be written says so once.
source "$(dirname "$0")/tvn_common.bash"
need python3 capinfos
need_build tvn ecv-flowgen

python3 - "$T/big.pcap" <<'PY' || fail "cannot write test pcap"
import struct, sys
def frame(n, sport):
    payload = b'x' * 100
    udp = struct.pack('!HHHH', sport, 80, 8 + len(payload), 0) + payload
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                     bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    f = b'\x02' * 6 + b'\x04' * 6 + b'\x08\x00' + ip + udp
    return f + b'\0' * (n - len(f))  # trailing bytes: pkt_parse accepts them
with open(sys.argv[1], 'wb') as out:
    out.write(struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 262144, 1))
    # A big record in the last batch slot, then a run of them: each overran the batch.
    for i, n in enumerate([200] * 63 + [262000] + [200] * 10 + [70000] + [262000] * 40):
        f = frame(n, 1000 + i)
        out.write(struct.pack('<IIII', 1000 + i, 0, len(f), len(f)) + f)
PY

echo "== oversized records"
P=$(free_port 4790) || skip "no free UDP port"
"$BUILD/tvn" --read "$T/big.pcap" --dedup off --out "vxlan:127.0.0.1:$P" \
	--out "pcap:$T/o.pcap" 2>"$T/big.log"
rc=$?
cat "$T/big.log"
! grep -q AddressSanitizer "$T/big.log" || fail "ASan error on oversized records"
[ $rc -eq 0 ] || fail "tvn exited $rc on oversized records, expected 0"
grep -q 'malformed 42: truncated=42' "$T/big.log" || fail "oversized records not counted as malformed"
[ "$(npackets "$T/o.pcap")" = 73 ] || fail "expected the 73 small frames in o.pcap"
grep -q "output pcap:$T/o.pcap: 73 frames, 0 dropped" "$T/big.log" || fail "pcap output count"

echo "== unwritable output"
"$BUILD/tvn" --read "$T/big.pcap" --dedup off --out pcap:/dev/full --out "pcap:$T/o2.pcap" \
	2>"$T/full.log"
rc=$?
cat "$T/full.log"
[ $rc -eq 1 ] || fail "tvn exited $rc with pcap:/dev/full, expected 1"
[ "$(grep -c 'failed to write pcap:/dev/full: No space left on device' "$T/full.log")" = 1 ] ||
	fail "expected one clear write error line"
grep -q 'output pcap:/dev/full: 0 frames, 73 dropped' "$T/full.log" || fail "/dev/full frames not drops"
[ "$(npackets "$T/o2.pcap")" = 73 ] || fail "the healthy output lost frames"
echo "== unwritable flow log"
"$BUILD/ecv-flowgen" --dir "$T/g" --flows 20 --max-size 2000 --seed 5 || fail "flowgen"
"$BUILD/tvn" --read "$T/g/a.pcap" --read "$T/g/b.pcap" --flow-log /dev/full \
	--out "pcap:$T/o3.pcap" 2>"$T/fl.log"
cat "$T/fl.log"
[ "$(grep -c 'failed to write flow log /dev/full: No space left on device' "$T/fl.log")" = 1 ] ||
	fail "expected one flow log write error line"
echo "PASS"
