package main

import "github.com/spf13/cobra"

func newMountCommand(g *GlobalOptions) *cobra.Command {
	return &cobra.Command{Use: "mount", Hidden: true}
}
