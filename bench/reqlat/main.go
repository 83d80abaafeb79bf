// Command reqlat times single requests of restic's REST protocol against
// a server (issue 17: restic through `cairn server` against rest-server).
//
//	reqlat -url http://user:pass@host:port/repo [-c CONNS] [-n REQUESTS]
//	       [-mode get|head|range] [-files K] [-range-size BYTES]
//
// It lists the repository's data files (the v2 listing), takes the K
// smallest, and sends -n requests in all, spread over -c connections (one
// kept-alive connection per worker), each for one of those files in turn:
// a whole GET, a HEAD, or a GET of -range-size bytes at an offset that
// varies from request to request (as a restore reads blobs out of packs).
// It prints the count, the bytes and per-request latency percentiles,
// request to the end of the body. The body's bytes are read and thrown
// away.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

type file struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
}

func main() {
	base := flag.String("url", "", "repository URL with credentials, http://user:pass@host:port/path")
	conns := flag.Int("c", 1, "connections (workers) at once")
	total := flag.Int("n", 2000, "requests in all")
	mode := flag.String("mode", "get", "get (whole file), head, or range")
	files := flag.Int("files", 8, "how many data files (the smallest) the requests cycle through")
	rangeSize := flag.Int64("range-size", 64<<10, "bytes per ranged GET")
	warm := flag.Int("warm", 20, "requests per connection before timing starts")
	flag.Parse()
	if err := run(*base, *conns, *total, *mode, *files, *rangeSize, *warm); err != nil {
		fmt.Fprintln(os.Stderr, "reqlat:", err)
		os.Exit(1)
	}
}

func run(base string, conns, total int, mode string, nfiles int, rangeSize int64, warm int) error {
	u, err := url.Parse(strings.TrimSuffix(base, "/"))
	if err != nil {
		return err
	}
	if mode != "get" && mode != "head" && mode != "range" {
		return fmt.Errorf("-mode %q: get, head or range", mode)
	}
	list, err := listData(u)
	if err != nil {
		return err
	}
	sort.Slice(list, func(i, j int) bool {
		return list[i].Size < list[j].Size || list[i].Size == list[j].Size && list[i].Name < list[j].Name
	})
	if mode == "range" {
		var big []file
		for _, f := range list {
			if f.Size >= 2*rangeSize {
				big = append(big, f)
			}
		}
		list = big
	}
	if len(list) == 0 {
		return fmt.Errorf("no data files (of at least %d bytes for -mode range)", 2*rangeSize)
	}
	list = list[:min(nfiles, len(list))]

	per := total / conns
	lat := make([][]time.Duration, conns)
	bytes := make([]int64, conns)
	errs := make(chan error, conns)
	var wg sync.WaitGroup
	start := make(chan struct{})
	var began time.Time
	ready := sync.WaitGroup{}
	for w := range conns {
		wg.Add(1)
		ready.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}
			cl := &http.Client{Transport: tr}
			defer tr.CloseIdleConnections()
			do := func(i int) (int64, error) {
				f := list[(w+i)%len(list)]
				method := http.MethodGet
				if mode == "head" {
					method = http.MethodHead
				}
				req, _ := http.NewRequest(method, u.String()+"/data/"+f.Name, nil)
				if mode == "range" {
					off := (int64(i) * 7919 * 4096) % (f.Size - rangeSize)
					req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+rangeSize-1))
				}
				resp, err := cl.Do(req)
				if err != nil {
					return 0, err
				}
				n, err := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil {
					return n, err
				}
				if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent {
					return n, fmt.Errorf("%s %s: %s", method, f.Name, resp.Status)
				}
				return n, nil
			}
			for i := range warm {
				if _, err := do(i); err != nil {
					ready.Done()
					errs <- err
					return
				}
			}
			ready.Done()
			<-start
			l := make([]time.Duration, 0, per)
			for i := range per {
				t0 := time.Now()
				n, err := do(warm + i)
				if err != nil {
					errs <- err
					return
				}
				l = append(l, time.Since(t0))
				bytes[w] += n
			}
			lat[w] = l
		}()
	}
	ready.Wait()
	began = time.Now()
	close(start)
	wg.Wait()
	wall := time.Since(began)
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	var all []time.Duration
	var nb int64
	for w := range conns {
		all = append(all, lat[w]...)
		nb += bytes[w]
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	pct := func(p float64) string {
		return fmt.Sprintf("%.0f", float64(all[min(len(all)-1, int(p*float64(len(all))))].Microseconds()))
	}
	var sum time.Duration
	for _, d := range all {
		sum += d
	}
	fmt.Printf("mode=%s conns=%d files=%d requests=%d bytes=%d wall_s=%.3f req_per_s=%.0f mean_us=%.0f p50_us=%s p90_us=%s p99_us=%s max_us=%s\n",
		mode, conns, len(list), len(all), nb, wall.Seconds(), float64(len(all))/wall.Seconds(),
		float64(sum.Microseconds())/float64(len(all)), pct(0.50), pct(0.90), pct(0.99), pct(0.9999999))
	return nil
}

// listData lists the repository's data files (restic's v2 listing).
func listData(u *url.URL) ([]file, error) {
	req, _ := http.NewRequest(http.MethodGet, u.String()+"/data/", nil)
	req.Header.Set("Accept", "application/vnd.x.restic.rest.v2")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("list data: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	var list []file
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return nil, fmt.Errorf("list data: %w", err)
	}
	return list, nil
}
