// Command cairn is the cairn backup client.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"runtime/trace"
	"syscall"

	"github.com/spf13/cobra"
)

const exitCodesHelp = `Exit codes:
  0    success
  1    the command failed
  3    partial result, each gap a warning: backup saved the snapshot without
       some unreadable files; restore, ls, find went on past lost or
       unrestorable paths; repair left packs for the owner key
  10   no repository at the given location
  11   the key cannot do this (a writer or server key where the owner key is needed,
       a server key for a backup)
  12   wrong password (no key matched)
  13   the server refused an upload: over the client's quota or space budget (507)
  14   the server refused a snapshot: too soon after the last (--min-interval, 429)
  130  interrupted (SIGINT/SIGTERM)`

func main() {
	// What cairn holds is mostly pointer-free (chunks, sealed blobs, the
	// index), so a collection costs little and a low target keeps peak
	// memory near the live set: on data set K, GOGC=25 against 50 cut a
	// backup's peak RSS from about 129 to 105 MiB for 1% more CPU.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(25)
	}
	// CAIRN_CPUPROFILE=FILE writes a CPU profile of the run (for `go tool
	// pprof`); performance work starts from one.
	if path := os.Getenv("CAIRN_CPUPROFILE"); path != "" {
		if code, ok := runProfiled(path, pprof.StartCPUProfile, pprof.StopCPUProfile); ok {
			os.Exit(code)
		}
	}
	// CAIRN_TRACE=FILE writes an execution trace of the run (for `go tool
	// trace`): where a run waits rather than computes, which a CPU
	// profile does not show.
	if path := os.Getenv("CAIRN_TRACE"); path != "" {
		if code, ok := runProfiled(path, trace.Start, trace.Stop); ok {
			os.Exit(code)
		}
	}
	// CAIRN_MEMPROFILE=FILE keeps a heap profile of the run's peak.
	if path := os.Getenv("CAIRN_MEMPROFILE"); path != "" {
		stop := startHeapProfile(path)
		code := run(os.Args[1:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// runProfiled runs the command line with a profile of the run written to
// path (start and stop: a CPU profile, an execution trace) and returns
// its exit code; false if the file cannot be made or the profile not
// started (the run then goes on without it).
func runProfiled(path string, start func(io.Writer) error, stop func()) (code int, ok bool) {
	f, err := os.Create(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	if err := start(f); err != nil {
		return 0, false
	}
	code = run(os.Args[1:], os.Stdout, os.Stderr)
	stop()
	return code, true
}

// run executes the command line and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	return runIO(args, os.Stdin, stdout, stderr)
}

// runIO is run with the standard input given: tests call it in-process.
func runIO(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	g := &GlobalOptions{stdin: stdin, stdout: stdout, stderr: stderr}
	root := newRootCommand(g)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	code := exitCode(ctx, err)
	if msg := errorMessage(err, code); msg != "" {
		if g.JSON || jsonFlagGiven(args) {
			writeJSONError(stderr, msg, code)
		} else {
			fmt.Fprintf(stderr, "cairn: %s\n", displayText(msg))
		}
	}
	if g.Debug {
		fmt.Fprintf(stderr, "debug: %#v\n", err)
	}
	return code
}

func newRootCommand(g *GlobalOptions) *cobra.Command {
	root := &cobra.Command{
		Use:   "cairn",
		Short: "Deduplicated, encrypted backups with write-only clients",
		Long: `cairn makes deduplicated, compressed, encrypted snapshots of directories
and restores them. Documentation: docs/commands.md.

` + exitCodesHelp,
		Example: `  export CAIRN_REPOSITORY=/srv/backup CAIRN_PASSWORD_FILE=~/.cairn-pass
  cairn init
  cairn backup /home /etc --tag daily
  cairn snapshots
  cairn restore latest:/home/alice --target /tmp/restore`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       buildVersion().String(),
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w; see `%s --help`", err, c.CommandPath())}
	})
	g.register(root)
	root.AddCommand(
		newInitCommand(g),
		newKeyCommand(g),
		newBackupCommand(g),
		newSnapshotsCommand(g),
		newLsCommand(g),
		newFindCommand(g),
		newDiffCommand(g),
		newStatsCommand(g),
		newRestoreCommand(g),
		newDrillCommand(g),
		newDumpCommand(g),
		newCheckCommand(g),
		newForgetCommand(g),
		newPruneCommand(g),
		newRepairCommand(g),
		newServerCommand(g),
		newTagCommand(g),
		newCopyCommand(g),
		newCatCommand(g),
		newMountCommand(g),
		newAgentCommand(g),
		newSetupClientCommand(g),
		newGenerateCommand(g),
		newVersionCommand(g),
	)
	return root
}
