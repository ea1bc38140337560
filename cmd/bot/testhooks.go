//go:build resetbot_testhooks

package main

// applyTestHooks wires the hooks the process tests ask for through the
// environment; they exist only in a binary built with
// -tags resetbot_testhooks (see binary in crash_test.go), never in the
// production build (testhooks_off.go).
//
//	RESETBOT_TEST_PANIC_TEXT  a slash command with exactly this text panics in its handler
func applyTestHooks(b *bot, getenv func(string) string) {
	if text := getenv("RESETBOT_TEST_PANIC_TEXT"); text != "" {
		b.app.PanicOn(text)
	}
}
