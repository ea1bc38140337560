package main

import (
	"context"
	"fmt"
	"io"

	"github.com/example/resetbot/config"
)

// doctor checks the configuration against the outside world. (Filled in by a
// later change; for now it validates the configuration.)
func doctor(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	_ = ctx
	_, err := config.Load(getenv)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "configuration: ok")
	return nil
}
