package agent

import (
	"strings"
	"testing"
	"time"
	_ "time/tzdata"
)

const full = `# /etc/cairn/agent.yaml
repository: rest:https://backup.example:8443/web1/main
server_fingerprint: SHA256:1afb-b5df-1fde-2c19-60a5-a189-6b98-d71a
client_password_file: /etc/cairn/client.password
key_file: /etc/cairn/writer.key
password_file: /etc/cairn/writer.password
paths: [/etc, /home, /srv]
exclude: ["*.tmp", /home/*/.cache]
tags: [nightly]
schedule:
  at: daily 04:00
  time_zone: Europe/Berlin
  jitter: 20m
retries:
  attempts: 3
  interval: 15m
bandwidth: 20MiB/s
hooks:
  before:
    - run: systemctl stop app
      timeout: 2m
  after:
    - run: systemctl start app
containers:
  stop: [db, web]
databases:
  - type: postgres
    databases: [app]
    user: backup
  - type: mariadb
    mode: quiesce
    data_dir: /var/lib/mysql
`

func TestParseFull(t *testing.T) {
	c, err := Parse("agent.yaml", []byte(full))
	if err != nil {
		t.Fatal(err)
	}
	if c.When.String() != "daily 04:00" || c.When.Location().String() != "Europe/Berlin" || c.Jitter != 20*time.Minute {
		t.Errorf("schedule: %v %v %v", c.When, c.When.Location(), c.Jitter)
	}
	if c.Retries.Attempts != 3 || c.RetryInterval != 15*time.Minute || c.BandwidthBytes != 20<<20 {
		t.Errorf("retries/bandwidth: %+v %v %d", c.Retries, c.RetryInterval, c.BandwidthBytes)
	}
	if len(c.Hooks.Before) != 1 || c.Hooks.Before[0].TimeoutDur != 2*time.Minute || c.Hooks.After[0].TimeoutDur != DefaultHookTimeout {
		t.Errorf("hooks: %+v", c.Hooks)
	}
	if c.Containers.Socket != DefaultDockerSocket || c.Databases[0].Mode != "dump" || c.Databases[0].TimeoutDur != DefaultDumpTimeout {
		t.Errorf("recipes: %+v %+v", c.Containers, c.Databases)
	}
}

func TestDefaults(t *testing.T) {
	c, err := Parse("agent.yaml", []byte("repository: /srv/backup/repo\nkey_file: /k\npassword_file: /p\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Paths) != 1 || c.Paths[0] != "/" || c.When.String() != DefaultSchedule || c.Retries.Attempts != DefaultAttempts ||
		c.RetryInterval != DefaultRetryInterval || c.Jitter != DefaultJitter || c.BandwidthBytes != 0 {
		t.Fatalf("defaults: %+v", c)
	}
}

// Every error names the line and the key, and all of them are reported.
func TestErrorsNameLineAndKey(t *testing.T) {
	for name, tt := range map[string]struct {
		src  string
		want []string
	}{
		"unknown key": {"repository: /r\nkey_file: /k\npassword_file: /p\nschedul:\n  at: daily\n",
			[]string{"agent.yaml line 4: schedul: unknown key"}},
		"nested unknown key": {"repository: /r\nkey_file: /k\npassword_file: /p\nschedule:\n  when: daily\n",
			[]string{"agent.yaml line 5: when: unknown key"}},
		"bad values": {`repository: rest:https://u:pw@host/c/r
key_file: relative.key
password_file: /p
schedule:
  at: daily 25:00
  time_zone: Mars/Olympus
retries:
  attempts: 0
  interval: soon
bandwidth: fast
hooks:
  before:
    - timeout: 1m
databases:
  - type: oracle
    mode: quiesce
`, []string{
			"line 1: repository: holds credentials",
			"server_fingerprint: required",
			"client_password_file: required",
			"line 2: key_file: want an absolute path",
			"line 5: schedule.at:",
			"line 6: schedule.time_zone: unknown time zone",
			"line 9: retries.interval: want a duration",
			"line 10: bandwidth: want a rate",
			"line 13: hooks.before.0.run: required",
			"line 15: databases.0.type: want mariadb, mysql or postgres",
			"line 15: databases.0.data_dir: quiesce copies", // absent: the line of its item
		}},
		"missing": {"paths: [relative]\n", []string{
			"repository: required", "key_file: required", "password_file: required", "line 1: paths.0: want an absolute path"}},
		"syntax": {"repository: [\n", []string{"agent.yaml: line"}},
		"empty":  {"# nothing\n", []string{"the file is empty"}},
		"wrong type": {"repository: /r\nkey_file: /k\npassword_file: /p\nretries:\n  attempts: many\n",
			[]string{"line 5"}},
	} {
		_, err := Parse("agent.yaml", []byte(tt.src))
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error\n%v\nlacks %q", name, err, w)
			}
		}
	}
}
