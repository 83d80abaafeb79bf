package main

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/cairnbackup/cairn/internal/server/monitor"
)

// The typed `server status --json` message mirrors monitor.Report field
// by field (last_agent_run was once lost that way). A Report with every
// field set must come out of serverStatusMessage with every one of its
// JSON keys, at the same place and with the same value.
func TestServerStatusMessageCarriesReport(t *testing.T) {
	var r monitor.Report
	n := 0
	fillAll(reflect.ValueOf(&r).Elem(), &n)

	want := jsonTree(t, r)
	got := jsonTree(t, serverStatusMessage(r))
	if got["message_type"] != "server_status" {
		t.Errorf("message_type = %v", got["message_type"])
	}
	for _, p := range missingKeys("", want, got) {
		t.Errorf("monitor.Report's %s has no counterpart (or another value) in server status --json", p)
	}
	delete(got, "message_type")
	// The fleet's pacing state comes from the server's queue, not from
	// monitoring: the one key the message has beyond the Report.
	delete(got, "backups")
	for _, p := range missingKeys("", got, want) {
		t.Errorf("server status --json's %s is not monitor.Report's", p)
	}
}

// missingKeys lists the paths of want (a decoded JSON value) that got
// lacks or holds with another value.
func missingKeys(path string, want, got any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{path}
		}
		var out []string
		for k, v := range w {
			gv, ok := g[k]
			if !ok {
				out = append(out, path+"."+k)
				continue
			}
			out = append(out, missingKeys(path+"."+k, v, gv)...)
		}
		return out
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []string{path}
		}
		var out []string
		for i := range w {
			out = append(out, missingKeys(fmt.Sprintf("%s[%d]", path, i), w[i], g[i])...)
		}
		return out
	default:
		if !reflect.DeepEqual(want, got) {
			return []string{fmt.Sprintf("%s (%v, message has %v)", path, want, got)}
		}
		return nil
	}
}

func jsonTree(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// fillAll sets every exported field under v to a distinct non-zero value:
// slices get one element, pointers a filled value, levels a valid one.
func fillAll(v reflect.Value, n *int) {
	*n++
	switch v.Interface().(type) {
	case time.Time:
		v.Set(reflect.ValueOf(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Add(time.Duration(*n) * time.Second)))
		return
	case time.Duration:
		v.SetInt(int64(*n) * int64(time.Second))
		return
	}
	if v.Type().Name() == "Level" { // alert.Level: OK, WARNING, ALERT
		v.SetInt(int64(1 + *n%2))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d", *n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(*n))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(*n))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(*n) + 0.5)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fillAll(v.Elem(), n)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fillAll(v.Index(0), n)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fillAll(v.Field(i), n)
			}
		}
	default:
		panic(fmt.Sprintf("fillAll: no rule for %s", v.Type()))
	}
}
