#!/usr/bin/env bash
# test_agent_nginx.sh - ecv-agent captures nginx and curl (both linked to libssl.so.3)
# on loopback: one keep-alive TLS 1.3 connection carrying a GET of a 1 MiB file and a
# POST of a 1 MiB upload. The capture must hold the connection once, each direction
# after a synthesized SYN with no duplicated byte and no hole, the file once in the
# server's direction and the upload once in the client's, behind the requests and the
# response headers that nginx and curl really sent.
. "$(dirname "$0")/lib/agent.bash"
ecvb_init ngx
need nginx
PORT=4441

harness_www "$TMP/www" big.bin=1M
head -c 1M /dev/urandom >"$TMP/upload.bin"
mkdir -p "$TMP/nginx"
cat >"$TMP/nginx.conf" <<EOF
master_process off;
pid $TMP/nginx.pid;
error_log $TMP/nginx.error.log warn;
events { worker_connections 64; }
http {
	access_log $TMP/nginx.access.log;
	client_body_temp_path $TMP/nginx/body;
	proxy_temp_path $TMP/nginx/proxy;
	fastcgi_temp_path $TMP/nginx/fcgi;
	uwsgi_temp_path $TMP/nginx/uwsgi;
	scgi_temp_path $TMP/nginx/scgi;
	client_max_body_size 4m;
	server {
		listen 127.0.0.1:$PORT ssl;
		ssl_certificate $TMP/cert.pem;
		ssl_certificate_key $TMP/key.pem;
		ssl_protocols TLSv1.3;
		root $TMP/www;
		location = /upload { return 200 "stored\n"; }
	}
}
EOF

start_tvn 4440
start_agent --lib "$LIBSSL"
bg ip netns exec "$NS" nginx -c "$TMP/nginx.conf" -g 'daemon off;' >"$TMP/nginx.log" 2>&1
started "$BG_PID" "$TMP/nginx.error.log" 10 nginx tcp_listening $PORT

note "curl: GET /big.bin (1 MiB), then POST /upload (1 MiB) on the same connection"
ip netns exec "$NS" curl -sS -k --tlsv1.3 --max-time 60 -o "$TMP/got.bin" \
	"https://127.0.0.1:$PORT/big.bin" --next -k --tlsv1.3 --max-time 60 \
	-H 'Content-Type: application/octet-stream' --data-binary "@$TMP/upload.bin" \
	-o "$TMP/got-upload" "https://127.0.0.1:$PORT/upload" || fail "curl failed"
cmp -s "$TMP/got.bin" "$TMP/www/big.bin" || fail "curl got a wrong file"
grep -q stored "$TMP/got-upload" || fail "nginx did not answer the upload"

capture_done
n=$(awk -v p=$PORT '$4 == p' "$TMP/streams.txt" | wc -l)
[ "$n" = 1 ] || fail "expected one connection to $PORT in the capture, found $n"
cport=$(client_port_of $PORT)
for d in "$cport $PORT" "$PORT $cport"; do
	l=$(stream_line $d)
	[ "$(field "$l" syn)" = 1 ] || fail "$d: no synthesized SYN ($l)"
	[ "$(field "$l" dup)" = 0 ] || fail "$d: duplicated bytes ($l)"
	[ "$(field "$l" holes)" = 0 ] || fail "$d: holes ($l)"
done
# The bytes: the requests and the upload exactly as curl wrote them, the response
# headers and the file exactly as nginx wrote them.
python3 - "$(stream_file "$cport" $PORT)" "$(stream_file $PORT "$cport")" \
	"$TMP/upload.bin" "$TMP/www/big.bin" <<'PY' || fail "the captured bytes are not what curl and nginx sent"
import re, sys
c2s, s2c, upload, big = (open(f, "rb").read() for f in sys.argv[1:])
get = re.match(rb"GET /big\.bin HTTP/1\.1\r\n(?:[^\r\n]+\r\n)*\r\n", c2s)
assert get, "client direction does not start with the GET request"
post = re.match(rb"POST /upload HTTP/1\.1\r\n(?:[^\r\n]+\r\n)*\r\n", c2s[get.end():])
assert post, "the POST request does not follow the GET"
assert b"Content-Length: %d\r\n" % len(upload) in post.group(0)
assert c2s[get.end() + post.end():] == upload, "client direction: upload differs"
r1 = re.match(rb"HTTP/1\.1 200 OK\r\n(?:[^\r\n]+\r\n)*\r\n", s2c)
assert r1, "server direction does not start with a 200 response"
assert s2c[r1.end():r1.end() + len(big)] == big, "server direction: file differs"
r2 = re.match(rb"HTTP/1\.1 200 OK\r\n(?:[^\r\n]+\r\n)*\r\nstored\n$", s2c[r1.end() + len(big):])
assert r2, "server direction: the upload's response is not right after the file"
PY
note "ok: GET request, POST request and upload; response, file and upload response, exactly"
echo "PASS: nginx + curl keep-alive (1 MiB down, 1 MiB up) captured exactly, hook: $(
	grep -o 'socket hook: [a-z]*' "$TMP/agent.log" | head -1 | cut -d' ' -f3)"
