// Command load puts hostile load on a `cairn server` on loopback, for
// bench/server-load.sh (R26):
//
//	load uploads -addr A -clients c1:pw1,c2:pw2 -over c9:pw9 -n 50 -size 400MiB
//	load slow -addr A -client c1:pw1 -n 1000 -stop FILE
//
// uploads sends n concurrent uploads of size bytes: a fifth accepted
// (named by their hash), two fifths with a wrong hash, two fifths from a
// client over its quota; it prints how each was answered. slow keeps n
// slow connections open (headers that never end, bodies that never come,
// with and without credentials, opening a new one for each the server
// closes) until the file stop exists, then prints how many it opened.
package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairnbackup/cairn/internal/units"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: load uploads|slow [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "uploads":
		err = uploads(os.Args[2:])
	case "slow":
		err = slow(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

// filler is a cheap deterministic stream: seed, then a counter pattern.
type filler struct {
	seed byte
	left int64
}

func (f *filler) Read(p []byte) (int, error) {
	if f.left <= 0 {
		return 0, io.EOF
	}
	n := min(int64(len(p)), f.left)
	for i := range p[:n] {
		p[i] = byte(i) ^ f.seed
	}
	f.left -= n
	return int(n), nil
}

type cred struct{ name, pw string }

func parseCreds(s string) []cred {
	var out []cred
	for _, c := range strings.Split(s, ",") {
		if n, pw, ok := strings.Cut(c, ":"); ok {
			out = append(out, cred{n, pw})
		}
	}
	return out
}

func uploads(args []string) error {
	fs := flag.NewFlagSet("uploads", flag.ExitOnError)
	addr := fs.String("addr", "", "server host:port")
	clients := fs.String("clients", "", "name:password,… of clients with room (each has a repository bench)")
	over := fs.String("over", "", "name:password of a client over its quota (repository bench)")
	n := fs.Int("n", 50, "concurrent uploads")
	sizeS := fs.String("size", "400MiB", "size of each upload")
	fs.Parse(args)
	size, err := units.ParseSize(*sizeS)
	if err != nil {
		return err
	}
	cs, ov := parseCreds(*clients), parseCreds(*over)
	if *addr == "" || len(cs) == 0 || len(ov) != 1 {
		return fmt.Errorf("give -addr, -clients and -over")
	}
	// Hashes of the accepted uploads, before the clock starts.
	type job struct {
		c     cred
		name  string
		seed  byte
		label string
	}
	var jobs []job
	for i := range *n {
		seed := byte(i)
		switch {
		case i%5 == 0:
			h := sha256.New()
			io.Copy(h, &filler{seed, int64(size)})
			jobs = append(jobs, job{cs[i%len(cs)], hex.EncodeToString(h.Sum(nil)), seed, "accepted"})
		case i%5 <= 2:
			jobs = append(jobs, job{cs[i%len(cs)], fmt.Sprintf("%064x", i+1), seed, "wrong hash"})
		default:
			jobs = append(jobs, job{ov[0], fmt.Sprintf("%064x", i+1), seed, "over quota"})
		}
	}
	tr := &http.Transport{MaxConnsPerHost: 0, DisableKeepAlives: true}
	client := &http.Client{Transport: tr}
	var mu sync.Mutex
	answers := map[string]int{}
	var wg sync.WaitGroup
	start := time.Now()
	for _, j := range jobs {
		wg.Go(func() {
			req, _ := http.NewRequest("POST", "http://"+*addr+"/"+j.c.name+"/bench/data/"+j.name, &filler{j.seed, int64(size)})
			req.ContentLength = int64(size)
			req.SetBasicAuth(j.c.name, j.c.pw)
			status := "error"
			resp, err := client.Do(req)
			if err != nil && (strings.Contains(err.Error(), "broken pipe") || strings.Contains(err.Error(), "connection reset")) {
				status = "closed before the body was sent"
			}
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				status = fmt.Sprint(resp.StatusCode)
			}
			mu.Lock()
			answers[j.label+" → "+status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	fmt.Printf("uploads:      %d × %s in %.1f s\n", len(jobs), units.FormatSize(size), time.Since(start).Seconds())
	var keys []string
	for k := range answers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("  %-42s %d\n", k, answers[k])
	}
	return nil
}

func slow(args []string) error {
	fs := flag.NewFlagSet("slow", flag.ExitOnError)
	addr := fs.String("addr", "", "server host:port")
	client := fs.String("client", "", "name:password of a client with a repository bench")
	n := fs.Int("n", 1000, "slow connections to keep open")
	stop := fs.String("stop", "", "stop once this file exists")
	fs.Parse(args)
	cs := parseCreds(*client)
	if *addr == "" || len(cs) != 1 || *stop == "" {
		return fmt.Errorf("give -addr, -client and -stop")
	}
	auth := "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(cs[0].name+":"+cs[0].pw)) + "\r\n"
	heads := []string{
		"GET /" + cs[0].name + "/bench/keys/ HTTP/1.1\r\nHost: x\r\n", // never ends
		"POST /" + cs[0].name + "/bench/data/" + strings.Repeat("ab", 32) + " HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n",
		"POST /" + cs[0].name + "/bench/data/" + strings.Repeat("cd", 32) + " HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Length: 100000000\r\n\r\n",
	}
	var opened, open atomic.Int64 // open: for a debugger; the server's fds are what counts
	done := make(chan struct{})
	go func() {
		for {
			if _, err := os.Stat(*stop); err == nil {
				close(done)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	var wg sync.WaitGroup
	for i := range *n {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				c, err := net.DialTimeout("tcp", *addr, 10*time.Second)
				if err != nil {
					time.Sleep(100 * time.Millisecond)
					continue
				}
				opened.Add(1)
				open.Add(1)
				io.WriteString(c, heads[i%len(heads)])
				if i%len(heads) == 2 {
					c.Write([]byte{0}) // one byte of the body, then nothing
				}
				// Hold it until the server closes it or the run ends.
				closed := make(chan struct{})
				go func() { io.Copy(io.Discard, c); close(closed) }()
				select {
				case <-closed:
				case <-done:
				}
				c.Close()
				open.Add(-1)
				// A slow attacker, not a flood: wait before the next.
				select {
				case <-time.After(time.Second):
				case <-done:
				}
			}
		})
	}
	<-done
	wg.Wait()
	fmt.Printf("slow conns:   %d at once, %d opened in all (each reopened 1 s after the server closed it)\n", *n, opened.Load())
	return nil
}
