//go:build !resetbot_testhooks

package slackapp

// testHooks is empty in the production build: nothing can make the bot
// panic on purpose (see testhooks.go).
type testHooks struct{}

// commandHook does nothing in the production build.
func (a *App) commandHook(string) {}
