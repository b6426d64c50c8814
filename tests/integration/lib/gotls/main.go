// tests/integration/lib/gotls - a TLS peer on Go's crypto/tls for test_agent_go.sh (and,
// in http.go, the net/http peers of tests/e2e/test_go_nodes.sh and the Go benchmark).
//
//	client ADDR SENDFILE RECVLEN OUTFILE   dials, writes SENDFILE in one Write, reads
//	                                       RECVLEN bytes into OUTFILE, closes
//	server ADDR CERT KEY RECVLEN SENDFILE  accepts one connection, reads RECVLEN bytes,
//	                                       writes SENDFILE in one Write, closes
//
// With GOTLS_WAIT=PATH in the environment it first waits (up to 60 s) for PATH to
// exist, so a test can let the agent's discovery find the program. GOTLS_CONNS=N runs N
// connections at once (the client's OUTFILE is then OUTFILE.I); GOTLS_TLS12=1 caps the
// client at TLS 1.2.
package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"time"
)

func conns() int {
	n, err := strconv.Atoi(os.Getenv("GOTLS_CONNS"))
	if err != nil || n < 1 {
		return 1
	}
	return n
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func exchange(c net.Conn, send []byte, recvLen int, out string) {
	var got []byte
	done := make(chan error, 1)
	go func() {
		got = make([]byte, recvLen)
		_, err := io.ReadFull(c, got)
		done <- err
	}()
	if send != nil {
		_, err := c.Write(send)
		must(err)
	}
	must(<-done)
	if out != "" {
		must(os.WriteFile(out, got, 0o644))
	}
}

func main() {
	if w := os.Getenv("GOTLS_WAIT"); w != "" {
		for i := 0; i < 600; i++ {
			if _, err := os.Stat(w); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	switch {
	case len(os.Args) == 6 && os.Args[1] == "client":
		send, err := os.ReadFile(os.Args[3])
		must(err)
		n, err := strconv.Atoi(os.Args[4])
		must(err)
		cfg := &tls.Config{InsecureSkipVerify: true}
		if os.Getenv("GOTLS_TLS12") == "1" {
			cfg.MaxVersion = tls.VersionTLS12
		}
		var wg sync.WaitGroup
		for i := 0; i < conns(); i++ {
			out := os.Args[5]
			if conns() > 1 {
				out = fmt.Sprintf("%s.%d", out, i)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := tls.Dial("tcp", os.Args[2], cfg)
				must(err)
				exchange(c, send, n, out)
				must(c.Close())
			}()
		}
		wg.Wait()
	case len(os.Args) == 7 && os.Args[1] == "server":
		cert, err := tls.LoadX509KeyPair(os.Args[3], os.Args[4])
		must(err)
		n, err := strconv.Atoi(os.Args[5])
		must(err)
		send, err := os.ReadFile(os.Args[6])
		must(err)
		ln, err := tls.Listen("tcp", os.Args[2], &tls.Config{Certificates: []tls.Certificate{cert}})
		must(err)
		var wg sync.WaitGroup
		for i := 0; i < conns(); i++ {
			c, err := ln.Accept()
			must(err)
			wg.Add(1)
			go func() {
				defer wg.Done()
				exchange(c, nil, n, "")
				_, err := c.Write(send)
				must(err)
				must(c.Close())
			}()
		}
		wg.Wait()
	case len(os.Args) >= 5 && os.Args[1] == "https-server":
		httpsServer(os.Args[2], os.Args[3], os.Args[4:])
	case len(os.Args) == 5 && os.Args[1] == "https-client":
		httpsClient(os.Args[2], os.Args[3], os.Args[4])
	default:
		fmt.Fprintln(os.Stderr, "usage: client ADDR SENDFILE RECVLEN OUTFILE | server ADDR CERT KEY RECVLEN SENDFILE")
		fmt.Fprintln(os.Stderr, "       https-server CERT KEY ADDR... | https-client URL UPFILE OUT (see http.go)")
		os.Exit(2)
	}
}
