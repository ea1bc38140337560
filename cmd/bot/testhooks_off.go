//go:build !resetbot_testhooks

package main

// applyTestHooks does nothing in the production build (see testhooks.go).
func applyTestHooks(*bot, func(string) string) {}
