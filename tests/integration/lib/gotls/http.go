// tests/integration/lib/gotls/http.go - the net/http peers of the Go tests (HTTP/1.1 and
// HTTP/2 over Go's own TLS, no external module):
//
//	https-server CERT KEY ADDR...   serves on every ADDR (ALPN h2 and http/1.1, TLS 1.2
//	                                and 1.3) until SIGTERM: POST (or GET) /xfer/ANY
//	                                reads the body and answers X-Up-Sha256 (the body's hash) with
//	                                the bytes of the file named in X-Down-File, or else
//	                                X-Down-Len bytes seeded by X-Down-Seed. With
//	                                GOTLS_ROOT=DIR, GET /files/NAME sends DIR/NAME.
//	https-client URL UPFILE OUT     POSTs UPFILE's bytes to URL (UPFILE "-": GETs URL),
//	                                asking for the file GOTLS_DOWNFILE, and writes the
//	                                response body to OUT; fails on a status other than
//	                                200 or when the server saw other bytes. With
//	                                GOTLS_WARMUP=1 it first GETs URL asking for 16
//	                                bytes, on the same connection.
//
// Client environment: GOTLS_H2=1 speaks HTTP/2 (ALPN h2, ForceAttemptHTTP2; an answer
// over HTTP/1.1 fails), otherwise HTTP/1.1 only; GOTLS_TLS12=1 caps TLS at 1.2;
// GOTLS_CONNS=N (with GOTLS_REQS=R) runs N goroutines each sending R requests through
// one keep-alive pool of at most N connections: request I uploads GOTLS_UPLEN seeded
// random bytes (UPFILE is then a directory, they are written as UPFILE/up-I) and gets
// GOTLS_DOWNLEN random bytes (OUT too is a directory: OUT/down-I). GOTLS_WAIT works as
// for the raw TLS peers.
package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

func envInt(name string, def int) int {
	n, err := strconv.Atoi(os.Getenv(name))
	if err != nil || n < 0 {
		return def
	}
	return n
}

// seeded returns n pseudo-random bytes, distinct for each seed.
func seeded(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

func xfer(w http.ResponseWriter, r *http.Request) {
	up, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	sum := sha256.Sum256(up)
	var down []byte
	if p := r.Header.Get("X-Down-File"); p != "" {
		if down, err = os.ReadFile(p); err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
	} else {
		n, err := strconv.Atoi(r.Header.Get("X-Down-Len"))
		if err != nil {
			http.Error(w, "X-Down-Len", http.StatusBadRequest)
			return
		}
		seed, _ := strconv.ParseInt(r.Header.Get("X-Down-Seed"), 10, 64)
		down = seeded(seed, n)
	}
	w.Header().Set("X-Up-Sha256", hex.EncodeToString(sum[:]))
	w.Header().Set("Content-Length", strconv.Itoa(len(down)))
	w.Write(down)
}

func httpsServer(cert, key string, addrs []string) {
	mux := http.NewServeMux()
	mux.HandleFunc("/xfer/", xfer)
	if root := os.Getenv("GOTLS_ROOT"); root != "" {
		mux.Handle("/files/", http.StripPrefix("/files/", http.FileServer(http.Dir(root))))
	}
	for _, a := range addrs {
		ln, err := net.Listen("tcp", a)
		must(err)
		srv := &http.Server{Handler: mux}
		go func() {
			if err := srv.ServeTLS(ln, cert, key); err != http.ErrServerClosed {
				must(err)
			}
		}()
	}
	fmt.Println("https-server: listening on", addrs)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
}

func transport(conns int) *http.Transport {
	cfg := &tls.Config{InsecureSkipVerify: true}
	if os.Getenv("GOTLS_TLS12") == "1" {
		cfg.MaxVersion = tls.VersionTLS12
	}
	t := &http.Transport{
		TLSClientConfig:     cfg,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     time.Minute,
	}
	if os.Getenv("GOTLS_H2") == "1" {
		t.ForceAttemptHTTP2 = true
	} else {
		// A non-nil empty map turns net/http's HTTP/2 off.
		t.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return t
}

// exchange1 POSTs up to url (GETs url when up is nil) and returns the response body,
// checking the server's hash of up.
func exchange1(c *http.Client, url string, up []byte, hdr map[string]string) ([]byte, error) {
	method, body := http.MethodGet, io.Reader(nil)
	if up != nil {
		method, body = http.MethodPost, bytes.NewReader(up)
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	down, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s: %s", url, resp.Status, down)
	}
	want := hex.EncodeToString(func() []byte { s := sha256.Sum256(up); return s[:] }())
	if got := resp.Header.Get("X-Up-Sha256"); up != nil && got != "" && got != want {
		return nil, fmt.Errorf("%s: the server received other bytes (sha256 %s)", url, got)
	}
	if os.Getenv("GOTLS_H2") == "1" && resp.ProtoMajor != 2 {
		return nil, fmt.Errorf("%s: answered over %s, not HTTP/2", url, resp.Proto)
	}
	return down, nil
}

func httpsClient(url, upfile, out string) {
	conns := envInt("GOTLS_CONNS", 0)
	if conns == 0 {
		var up []byte
		if upfile != "-" {
			var err error
			up, err = os.ReadFile(upfile)
			must(err)
		}
		c := &http.Client{Transport: transport(1)}
		if os.Getenv("GOTLS_WARMUP") == "1" {
			_, err := exchange1(c, url, nil, map[string]string{"X-Down-Len": "16"})
			must(err)
		}
		down, err := exchange1(c, url, up, map[string]string{"X-Down-File": os.Getenv("GOTLS_DOWNFILE")})
		must(err)
		must(os.WriteFile(out, down, 0o644))
		c.CloseIdleConnections()
		return
	}
	reqs := envInt("GOTLS_REQS", 1)
	upLen, downLen := envInt("GOTLS_UPLEN", 4096), envInt("GOTLS_DOWNLEN", 4096)
	c := &http.Client{Transport: transport(conns)}
	var wg sync.WaitGroup
	for g := 0; g < conns; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for r := 0; r < reqs; r++ {
				i := g*reqs + r
				up := seeded(int64(2*i+1), upLen)
				down, err := exchange1(c, url, up, map[string]string{
					"X-Down-Len":  strconv.Itoa(downLen),
					"X-Down-Seed": strconv.Itoa(2*i + 2),
				})
				must(err)
				must(os.WriteFile(filepath.Join(upfile, fmt.Sprintf("up-%d", i)), up, 0o644))
				must(os.WriteFile(filepath.Join(out, fmt.Sprintf("down-%d", i)), down, 0o644))
			}
		}(g)
	}
	wg.Wait()
	c.CloseIdleConnections()
}
