//go:build resetbot_testhooks

package slackapp

// testHooks let the process tests, which run a binary built with
// -tags resetbot_testhooks, provoke what no real input can. The production
// build has none (testhooks_off.go).
type testHooks struct{ panicText string }

// PanicOn makes a slash command with exactly text panic inside its
// handler, so that a test of the built binary can prove that a panic is
// recovered, answered and logged, and that the bot serves on. It exists
// only with -tags resetbot_testhooks.
func (a *App) PanicOn(text string) { a.hooks.panicText = text }

// commandHook runs before a slash command is handled.
func (a *App) commandHook(text string) {
	if a.hooks.panicText != "" && text == a.hooks.panicText {
		panic("test hook: this command was told to panic")
	}
}
