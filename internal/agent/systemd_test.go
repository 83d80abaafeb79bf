package agent

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestUnits(t *testing.T) {
	c := testConfig(t, "schedule: {at: daily 04:00, time_zone: Europe/Berlin, jitter: 20m}\n")
	exe, _ := os.Executable()
	for _, daemon := range []bool{false, true} {
		units, err := Units(c, UnitOptions{Exe: exe, Config: "/etc/cairn/agent.yaml", Daemon: daemon})
		if err != nil {
			t.Fatal(err)
		}
		svc := units[ServiceUnit]
		verb := map[bool]string{false: "once", true: "run"}[daemon]
		for _, want := range []string{
			"ExecStart=" + exe + " agent " + verb + " --config /etc/cairn/agent.yaml\n",
			"AmbientCapabilities=CAP_DAC_READ_SEARCH\n", "CapabilityBoundingSet=CAP_DAC_READ_SEARCH\n",
			"DynamicUser=yes\n", "NoNewPrivileges=yes\n", "ProtectSystem=strict\n", "KillMode=mixed\n",
		} {
			if !strings.Contains(svc, want) {
				t.Errorf("daemon=%v: service lacks %q:\n%s", daemon, want, svc)
			}
		}
		timer, hasTimer := units[TimerUnit]
		if hasTimer == daemon {
			t.Fatalf("daemon=%v: timer written: %v", daemon, hasTimer)
		}
		if !daemon {
			for _, want := range []string{"OnCalendar=*-*-* 04:00:00 Europe/Berlin\n", "RandomizedDelaySec=1200\n", "Persistent=true\n", "WantedBy=timers.target\n"} {
				if !strings.Contains(timer, want) {
					t.Errorf("timer lacks %q:\n%s", want, timer)
				}
			}
		} else if !strings.Contains(svc, "WantedBy=multi-user.target") || !strings.Contains(svc, "Restart=on-failure") {
			t.Errorf("daemon service:\n%s", svc)
		}
		verifyUnits(t, units)
	}
	if _, err := Units(testConfig(t, "schedule: {at: every 6h}\n"), UnitOptions{Exe: exe, Config: "/c"}); err == nil || !strings.Contains(err.Error(), "--daemon") {
		t.Errorf("every 6h as a timer: %v", err)
	}
	units, _ := Units(c, UnitOptions{Exe: "/opt/my cairn/cairn", Config: "/etc/cairn/a%b.yaml", User: "backup", Daemon: true})
	if s := units[ServiceUnit]; !strings.Contains(s, `ExecStart="/opt/my cairn/cairn" agent run --config "/etc/cairn/a%%b.yaml"`) || !strings.Contains(s, "User=backup\n") || strings.Contains(s, "DynamicUser") {
		t.Errorf("quoting or user:\n%s", s)
	}
}

// verifyUnits runs systemd-analyze verify on the units when it is there.
func verifyUnits(t *testing.T, units map[string]string) {
	t.Helper()
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not installed: unit files not verified")
		return
	}
	dir := t.TempDir()
	var paths []string
	for name, body := range units {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	out, err := exec.Command(sa, append([]string{"verify"}, paths...)...).CombinedOutput()
	// verify also reports unrelated units of the machine it runs on;
	// only lines about ours count.
	var ours []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "cairn-agent") {
			ours = append(ours, l)
		}
	}
	if len(ours) > 0 {
		t.Errorf("systemd-analyze verify (%v):\n%s", err, strings.Join(ours, "\n"))
	}
}
