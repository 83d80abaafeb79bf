package agent

import (
	"fmt"
	"strings"
)

// UnitOptions are what `cairn agent install` writes units for.
type UnitOptions struct {
	Exe    string // absolute path of the cairn executable
	Config string // absolute path of the configuration file
	// Daemon: a long-running service for `agent run` (the agent keeps the
	// schedule and jitter); otherwise a timer starts `agent once`.
	Daemon bool
	// User the agent runs as; "" is an unprivileged user systemd
	// allocates (DynamicUser=yes, named cairn-agent).
	User string
}

// Unit names.
const (
	ServiceUnit = "cairn-agent.service"
	TimerUnit   = "cairn-agent.timer"
)

// systemdQuote quotes one ExecStart= word (systemd.syntax(7)).
func systemdQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\"'\\$%;") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `$`, `$$`, `%`, `%%`)
	return `"` + r.Replace(s) + `"`
}

// Units returns the unit files' names and contents. The service runs
// unprivileged with CAP_DAC_READ_SEARCH, which reads every file and
// directory while writing none, behind systemd's sandboxing.
func Units(c *Config, o UnitOptions) (map[string]string, error) {
	verb := "once"
	if o.Daemon {
		verb = "run"
	}
	var user string
	if o.User == "" {
		user = "DynamicUser=yes\nUser=cairn-agent\n"
	} else {
		user = "User=" + o.User + "\n"
	}
	typ := "Type=oneshot\n"
	if o.Daemon {
		typ = "Type=exec\nRestart=on-failure\nRestartSec=5min\n"
	}
	svc := fmt.Sprintf(`# Written by cairn agent install; docs/agent.md explains each setting.
[Unit]
Description=cairn backup agent (%s)
Documentation=https://github.com/cairnbackup/cairn/blob/main/docs/agent.md
Wants=network-online.target
After=network-online.target

[Service]
%sExecStart=%s agent %s --config %s
%s# Reads every file (CAP_DAC_READ_SEARCH), writes none but its cache.
AmbientCapabilities=CAP_DAC_READ_SEARCH
CapabilityBoundingSet=CAP_DAC_READ_SEARCH
NoNewPrivileges=yes
CacheDirectory=cairn-agent
Environment=CAIRN_CACHE_DIR=%%C/cairn-agent
ProtectSystem=strict
ProtectHome=read-only
ReadWritePaths=-/run/postgresql -/run/mysqld
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictSUIDSGID=yes
RestrictRealtime=yes
RestrictNamespaces=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
SystemCallArchitectures=native
# Stopping sends SIGTERM; the agent ends its hooks' process groups.
KillMode=mixed
TimeoutStopSec=1min
`, verb, typ, systemdQuote(o.Exe), verb, systemdQuote(o.Config), user)
	units := map[string]string{ServiceUnit: svc}
	if o.Daemon {
		units[ServiceUnit] += "\n[Install]\nWantedBy=multi-user.target\n"
		return units, nil
	}
	cal, err := c.When.OnCalendar()
	if err != nil {
		return nil, err
	}
	units[TimerUnit] = fmt.Sprintf(`# Written by cairn agent install; docs/agent.md explains each setting.
[Unit]
Description=cairn backup agent schedule (%s)

[Timer]
OnCalendar=%s
RandomizedDelaySec=%d
Persistent=true

[Install]
WantedBy=timers.target
`, strings.ReplaceAll(c.When.String(), "%", "%%"), cal, int(c.Jitter.Seconds()))
	return units, nil
}
