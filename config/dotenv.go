package config

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/example/resetbot/internal/dotenv"
)

// A .env file is read with dotenv.Parse (Docker Compose's rules, no
// shell), so that one file means the same to `bot`, to scripts/run.sh and
// to `docker compose`.

// EnvFileVar names the environment variable that points the bot at a .env
// file, like `bot --env-file PATH`.
const EnvFileVar = "BOT_ENV_FILE"

// EnvFile is a .env file read under the real environment.
type EnvFile struct {
	Path       string
	Vars       map[string]string // what the file sets
	Overridden []string          // the names the real environment sets too, sorted: its values win
}

// WithEnvFile returns getenv with the settings of a .env file beneath it:
// a variable that getenv gives (not empty) wins over the file. The file is
// path, or else the one BOT_ENV_FILE names; with neither, getenv is
// returned as it is and the file is nil. Only names are kept for the
// report, never values.
func WithEnvFile(getenv func(string) string, path string) (func(string) string, *EnvFile, error) {
	if path == "" {
		path = strings.TrimSpace(getenv(EnvFileVar))
	}
	if path == "" {
		return getenv, nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("env file: cannot read %s: %v", path, errors.Unwrap(err))
	}
	lookup := func(k string) (string, bool) {
		v := getenv(k)
		return v, v != ""
	}
	vars, err := dotenv.Parse(data, lookup)
	if err != nil {
		return nil, nil, fmt.Errorf("env file %s, %v", path, err)
	}
	f := &EnvFile{Path: path, Vars: vars}
	for k := range vars {
		if getenv(k) != "" {
			f.Overridden = append(f.Overridden, k)
		}
	}
	sort.Strings(f.Overridden)
	return func(k string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return vars[k]
	}, f, nil
}

// String says what was read, by name only.
func (f *EnvFile) String() string {
	s := fmt.Sprintf("%s (%d settings", f.Path, len(f.Vars))
	if len(f.Overridden) > 0 {
		s += "; the environment wins for " + strings.Join(f.Overridden, ", ")
	}
	return s + ")"
}
