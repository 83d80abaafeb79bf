// Command report turns the raw measurements bench/run writes (one TSV row
// per tool, step, data set and round) into the side-by-side table: median
// wall seconds and min-max over rounds, median CPU (user+sys) seconds, median
// peak RSS, median repository size after the step, per tool, then the ratios
// cairn/restic and cairn/borg of those medians.
//
//	go run ./bench/report [-tools cairn,restic,borg] [-base cairn] RAW.tsv
//
// Stdlib only; not imported by anything in the module.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// columns of the raw TSV, in order
var header = []string{"round", "dataset", "step", "tool", "status", "wall_s", "user_s", "sys_s", "maxrss_kib", "repo_bytes", "cache_bytes", "note"}

type row struct {
	round                 int
	dataset, step, tool   string
	status                string
	wall, user, sys       float64
	rssKiB, repoB, cacheB float64
	note                  string
}

type key struct{ dataset, step, tool string }

type cell struct {
	n, ok                int
	wall, cpu, rss, repo float64 // medians over ok rounds
	min, max             float64
	status               string // when ok == 0: what happened
}

func main() {
	tools := flag.String("tools", "cairn,restic,borg", "tool columns, in order")
	base := flag.String("base", "cairn", "tool whose ratio to each other tool is printed")
	skip := flag.String("skip-steps", "init", "steps left out of the table (still in the TSV)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: report [-tools a,b,c] [-base a] RAW.tsv")
		os.Exit(2)
	}
	f, err := os.Open(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	rows, err := parse(f)
	f.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
	render(os.Stdout, rows, strings.Split(*tools, ","), *base, strings.Split(*skip, ","))
}

func parse(r io.Reader) ([]row, error) {
	var rows []row
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		t := sc.Text()
		if t == "" || strings.HasPrefix(t, "#") || strings.HasPrefix(t, "round\t") {
			continue
		}
		fs := strings.Split(t, "\t")
		if len(fs) < len(header)-1 {
			return nil, fmt.Errorf("line %d: %d fields, want %d", line, len(fs), len(header))
		}
		for len(fs) < len(header) {
			fs = append(fs, "")
		}
		num := func(s string) float64 {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return -1
			}
			return v
		}
		rd, _ := strconv.Atoi(fs[0])
		rows = append(rows, row{
			round: rd, dataset: fs[1], step: fs[2], tool: fs[3], status: fs[4],
			wall: num(fs[5]), user: num(fs[6]), sys: num(fs[7]),
			rssKiB: num(fs[8]), repoB: num(fs[9]), cacheB: num(fs[10]), note: fs[11],
		})
	}
	return rows, sc.Err()
}

func okStatus(s string) bool { return s == "ok" || s == "warn" }

func median(v []float64) float64 {
	if len(v) == 0 {
		return -1
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func summarize(rs []row) cell {
	c := cell{n: len(rs)}
	var wall, cpu, rss, repo []float64
	statuses := map[string]int{}
	for _, r := range rs {
		if !okStatus(r.status) || r.wall < 0 {
			statuses[r.status]++
			continue
		}
		c.ok++
		wall = append(wall, r.wall)
		cpu = append(cpu, r.user+r.sys)
		rss = append(rss, r.rssKiB/1024)
		if r.repoB >= 0 {
			repo = append(repo, r.repoB/(1<<20))
		}
	}
	if c.ok > 0 {
		c.wall, c.cpu, c.rss, c.repo = median(wall), median(cpu), median(rss), median(repo)
		c.min, c.max = slices.Min(wall), slices.Max(wall)
	}
	// the status shown when nothing succeeded: the most frequent one
	best := 0
	for s, n := range statuses {
		if n > best || (n == best && s < c.status) {
			c.status, best = s, n
		}
	}
	return c
}

func secs(v float64) string {
	switch {
	case v < 0:
		return "-"
	case v < 10:
		return fmt.Sprintf("%.2f", v)
	case v < 1000:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

func mib(v float64) string {
	switch {
	case v < 0:
		return "-"
	case v < 100:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

func ratio(a, b float64) string {
	if a < 0 || b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", a/b)
}

const (
	groupW = 41 // "wall s  min-max  cpu s  RSS  repo"
	ratioW = 23
)

func group(c cell, failedNote *bool) string {
	if c.n == 0 {
		return fmt.Sprintf("%-*s", groupW, "")
	}
	if c.ok == 0 {
		s := c.status
		switch s {
		case "n/a":
			s = "n/a (build failed)"
		case "skip":
			s = "skipped (earlier step failed)"
		default:
			s = fmt.Sprintf("%s (%d/%d rounds)", s, c.n, c.n)
		}
		return fmt.Sprintf("%-*s", groupW, "  "+s)
	}
	mark := " "
	if c.ok < c.n {
		mark = "*"
		*failedNote = true
	}
	rng := secs(c.min) + "-" + secs(c.max)
	return fmt.Sprintf("%7s%s %11s %6s %5.0f %7s", secs(c.wall), mark, rng, secs(c.cpu), c.rss, mib(c.repo))
}

func render(w io.Writer, rows []row, tools []string, base string, skip []string) {
	// keep the order in which data sets and steps first appear
	var datasets []string
	steps := map[string][]string{}
	cells := map[key][]row{}
	present := map[string]bool{}
	for _, r := range rows {
		if slices.Contains(skip, r.step) {
			continue
		}
		if !slices.Contains(datasets, r.dataset) {
			datasets = append(datasets, r.dataset)
		}
		if !slices.Contains(steps[r.dataset], r.step) {
			steps[r.dataset] = append(steps[r.dataset], r.step)
		}
		k := key{r.dataset, r.step, r.tool}
		cells[k] = append(cells[k], r)
		present[r.tool] = true
	}
	var cols []string
	for _, t := range tools {
		if present[t] {
			cols = append(cols, t)
		}
	}
	for t := range present {
		if !slices.Contains(cols, t) {
			cols = append(cols, t)
		}
	}
	var others []string
	if present[base] {
		for _, t := range cols {
			if t != base {
				others = append(others, t)
			}
		}
	}

	labelW := 22
	var h1, h2 strings.Builder
	fmt.Fprintf(&h1, "%-*s", labelW, "")
	fmt.Fprintf(&h2, "%-*s", labelW, "data  step")
	for _, t := range cols {
		fmt.Fprintf(&h1, " | %-*s", groupW, t)
		fmt.Fprintf(&h2, " | %7s  %11s %6s %5s %7s", "wall s", "min-max", "cpu s", "RSS", "repo")
	}
	for _, t := range others {
		fmt.Fprintf(&h1, " | %-*s", ratioW, base+"/"+t)
		fmt.Fprintf(&h2, " | %5s %5s %5s %5s", "wall", "cpu", "RSS", "repo")
	}
	fmt.Fprintln(w, strings.TrimRight(h1.String(), " "))
	fmt.Fprintln(w, h2.String())
	fmt.Fprintln(w, strings.Repeat("-", len([]rune(h2.String()))))

	failedNote := false
	for _, ds := range datasets {
		for _, st := range steps[ds] {
			var b strings.Builder
			fmt.Fprintf(&b, "%-*s", labelW, fmt.Sprintf("%-5s %s", ds, st))
			sum := map[string]cell{}
			for _, t := range cols {
				c := summarize(cells[key{ds, st, t}])
				sum[t] = c
				fmt.Fprintf(&b, " | %s", group(c, &failedNote))
			}
			bc := sum[base]
			for _, t := range others {
				oc := sum[t]
				if bc.ok == 0 || oc.ok == 0 {
					fmt.Fprintf(&b, " | %5s %5s %5s %5s", "n/a", "", "", "")
					continue
				}
				fmt.Fprintf(&b, " | %5s %5s %5s %5s", ratio(bc.wall, oc.wall), ratio(bc.cpu, oc.cpu),
					ratio(bc.rss, oc.rss), ratio(bc.repo, oc.repo))
			}
			fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "wall s: median over rounds; min-max: fastest-slowest round; cpu s: median user+sys;")
	fmt.Fprintln(w, "RSS: median peak RSS, MiB; repo: median `du -sb` of the repository after the step, MiB;")
	if len(others) > 0 {
		fmt.Fprintf(w, "%s/X: ratio of the medians (below 1.00 = %s better).\n", base, base)
	}
	if failedNote {
		fmt.Fprintln(w, "*: some rounds failed; figures are over the successful rounds only.")
	}

	// every failure, once
	var fails []string
	for _, r := range rows {
		if !okStatus(r.status) && r.status != "skip" && r.status != "n/a" {
			fails = append(fails, fmt.Sprintf("  round %d %s %s %s: %s %s", r.round, r.dataset, r.step, r.tool, r.status, r.note))
		}
	}
	if len(fails) > 0 {
		fmt.Fprintln(w, "\nfailures:")
		for _, f := range fails {
			fmt.Fprintln(w, strings.TrimRight(f, " "))
		}
	}
}
