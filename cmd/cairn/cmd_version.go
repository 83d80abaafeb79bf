package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at link time: go build -ldflags "-X main.version=1.2.0".
var version = ""

// versionInfo is what `cairn version` reports.
type versionInfo struct {
	Version, Revision, GoVersion, OS, Arch string
}

func buildVersion() versionInfo {
	v := versionInfo{Version: version, GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v.Version = bi.Main.Version
		}
		dirty := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Revision = s.Value[:min(12, len(s.Value))]
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if dirty && v.Revision != "" {
			v.Revision += "-dirty"
		}
	}
	if v.Version == "" {
		v.Version = "devel"
	}
	return v
}

// String is the line `cairn version` and `cairn --version` print.
func (v versionInfo) String() string {
	s := "cairn " + v.Version
	if v.Revision != "" {
		s += " (" + v.Revision + ")"
	}
	return fmt.Sprintf("%s compiled with %s on %s/%s", s, v.GoVersion, v.OS, v.Arch)
}

func newVersionCommand(g *GlobalOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version of cairn",
		Long:    `Print cairn's version, the commit it was built from (when known), and the Go version and platform. The same as cairn --version.`,
		Example: "  cairn version\n  cairn version --json",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			v := buildVersion()
			if g.JSON {
				return writeJSON(g.stdout, versionJSON{MessageType: "version", Version: v.Version, Revision: v.Revision,
					GoVersion: v.GoVersion, GoOS: v.OS, GoArch: v.Arch})
			}
			_, err := fmt.Fprintln(g.stdout, v.String())
			return err
		},
	}
}
