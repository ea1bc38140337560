// Command bot is the Slack password-reset bot. With no arguments it runs the
// bot; `bot doctor` checks the configuration against Slack, the store and the
// directory and says what to fix.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	redisstore "github.com/example/resetbot/store/redisstore"
)

func main() {
	// go-redis logs through a global; route it into the JSON log once.
	redisstore.SetLogger(slog.New(slog.NewJSONHandler(os.Stdout, nil)).With("component", "go-redis"))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err) // it says what ran: "bot: ...", "bot doctor: ..."
		os.Exit(1)
	}
}
