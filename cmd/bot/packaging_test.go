package main

import (
	"context"
	"fmt"
	"go/version"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// No Docker engine runs here or in CI, so these tests read the packaging
// files and check what they promise. Each check also runs against broken
// copies of the file, to show that it would notice.

func readRepoFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// breakage is one way to break a packaging file: edits are old, new pairs;
// every old must occur in the file, and the file with every occurrence of
// each old replaced by its new must fail the checks.
type breakage struct {
	why   string
	edits []string
}

func brk(why string, edits ...string) breakage { return breakage{why, edits} }

func checkBreakages(t *testing.T, good string, breakages []breakage, problems func(string) []string) {
	t.Helper()
	for _, b := range breakages {
		missing := false
		for i := 0; i < len(b.edits); i += 2 {
			if !strings.Contains(good, b.edits[i]) {
				t.Errorf("%s: the file no longer contains %q; update this test", b.why, b.edits[i])
				missing = true
			}
		}
		if missing {
			continue
		}
		if ps := problems(strings.NewReplacer(b.edits...).Replace(good)); len(ps) == 0 {
			t.Errorf("%s: the checks found nothing wrong", b.why)
		}
	}
}

// --- Dockerfile ---

var (
	pinnedFrom = regexp.MustCompile(`^FROM (?:--platform=\S+ )?(\S+?):(\S+)@sha256:[0-9a-f]{64}(?: AS \S+)?$`)
	goImageTag = regexp.MustCompile(`^(1\.\d+\.\d+)-bookworm$`)
)

// dockerfileProblems checks the base images (pinned by digest, with a note
// on how to update them; a Go builder at least as new as go.mod asks, since
// the golang image builds with GOTOOLCHAIN=local) and the HEALTHCHECK.
func dockerfileProblems(s, goModVersion string) []string {
	var problems []string
	var images []string
	for line := range strings.SplitSeq(s, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(strings.ToUpper(line), "FROM ") {
			continue
		}
		m := pinnedFrom.FindStringSubmatch(line)
		if m == nil {
			problems = append(problems, fmt.Sprintf("%q: base images are pinned as FROM image:tag@sha256:<64 hex digits>", line))
			continue
		}
		images = append(images, m[1])
		if m[1] == "golang" {
			g := goImageTag.FindStringSubmatch(m[2])
			switch {
			case g == nil:
				problems = append(problems, fmt.Sprintf("golang:%s: name the Go release the digest holds, like golang:1.26.8-bookworm", m[2]))
			case version.Compare("go"+g[1], "go"+goModVersion) < 0:
				problems = append(problems, fmt.Sprintf("golang:%s is older than go %s in go.mod: the image builds with GOTOOLCHAIN=local and would fail", m[2], goModVersion))
			}
		}
		if m[1] == "gcr.io/distroless/static-debian12" && m[2] != "nonroot" {
			problems = append(problems, fmt.Sprintf("distroless tag %q, want nonroot", m[2]))
		}
	}
	if !slices.Equal(images, []string{"golang", "gcr.io/distroless/static-debian12"}) {
		problems = append(problems, fmt.Sprintf("base images %q, want a golang build stage and a gcr.io/distroless/static-debian12 final stage", images))
	}
	if !strings.Contains(s, "docker buildx imagetools inspect") && !strings.Contains(s, "crane digest") {
		problems = append(problems, "no comment saying how to update the digests (docker buildx imagetools inspect, crane digest)")
	}
	if !regexp.MustCompile(`(?m)^ENV .*\bHTTP_ADDR=:8080\b`).MatchString(s) {
		problems = append(problems, "no ENV HTTP_ADDR=:8080: outside a container the bot listens on 127.0.0.1 only, where nothing outside the container reaches it")
	}
	if !regexp.MustCompile(`(?m)^HEALTHCHECK (?:--\S+ )*CMD \["/bot", "healthcheck"\]$`).MatchString(s) {
		problems = append(problems, `no HEALTHCHECK ... CMD ["/bot", "healthcheck"]: the image has no shell or curl`)
	}
	return problems
}

func goModGoVersion(t *testing.T) string {
	t.Helper()
	for line := range strings.SplitSeq(readRepoFile(t, "go.mod"), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "go "); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatal("go.mod has no go line")
	return ""
}

func TestDockerfilePinsAndHealthcheck(t *testing.T) {
	s, gov := readRepoFile(t, "Dockerfile"), goModGoVersion(t)
	for _, p := range dockerfileProblems(s, gov) {
		t.Error("Dockerfile: " + p)
	}
	from := regexp.MustCompile(`(?m)^FROM (\S+)`)
	var golang, distroless string
	for _, m := range from.FindAllStringSubmatch(s, -1) {
		if strings.HasPrefix(m[1], "golang:") {
			golang = m[1]
		} else {
			distroless = m[1]
		}
	}
	goTag, _, _ := strings.Cut(golang, "@")
	goTag += "@"
	checkBreakages(t, s, []breakage{
		brk("golang by tag only", golang, strings.Split(golang, "@")[0]),
		brk("distroless by tag only", distroless, strings.Split(distroless, "@")[0]),
		brk("a short digest", distroless, distroless[:len(distroless)-1]),
		brk("a floating Go tag", goTag, "golang:1.26-bookworm@"),
		brk("a Go older than go.mod", goTag, "golang:1.20.0-bookworm@"),
		brk("the root distroless image", "static-debian12:nonroot@", "static-debian12:latest@"),
		brk("no HEALTHCHECK", "HEALTHCHECK ", "# HEALTHCHECK "),
		brk("a HEALTHCHECK that needs a shell", `CMD ["/bot", "healthcheck"]`, `CMD curl -f http://127.0.0.1:8080/healthz`),
		brk("no note on updating", "docker buildx imagetools inspect", "look up", "crane digest", "look up"),
		brk("the default HTTP_ADDR (127.0.0.1) in the container", " HTTP_ADDR=:8080", ""),
	}, func(s string) []string { return dockerfileProblems(s, gov) })
}

// --- .dockerignore ---

// dockerignoreProblems wants the secrets (.env and every .env.*, the example
// included since nothing in the image reads it), local data, test binaries,
// the git history and docs out of the build context, with no exception that
// lets an .env back in.
func dockerignoreProblems(s string) []string {
	lines := map[string]bool{}
	var problems []string
	for line := range strings.SplitSeq(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		lines[line] = true
		if strings.HasPrefix(line, "!") && strings.Contains(line, ".env") {
			problems = append(problems, fmt.Sprintf("%q lets an .env file back into the build context", line))
		}
	}
	for _, want := range []string{".env", ".env.*", "secrets", "data", "*.test", ".git", "docs"} {
		if !lines[want] {
			problems = append(problems, fmt.Sprintf("does not list %q", want))
		}
	}
	return problems
}

func TestDockerfileDockerignore(t *testing.T) {
	s := readRepoFile(t, ".dockerignore")
	for _, p := range dockerignoreProblems(s) {
		t.Error(".dockerignore: " + p)
	}
	checkBreakages(t, s, []breakage{
		brk("no .env", "\n.env\n", "\n"),
		brk("no .env.*", "\n.env.*\n", "\n"),
		brk(".env.example let back in", "\n.env.*\n", "\n.env.*\n!.env.example\n"),
		brk("no .git", "\n.git\n", "\n"),
		brk("no secrets", "\nsecrets\n", "\n"),
	}, dockerignoreProblems)
}

// --- docker-compose.yml ---

var digestPinned = regexp.MustCompile(`@sha256:[0-9a-f]{64}$`)

// composeProblems checks what docker-compose.yml promises: the bot built
// here with its settings from .env, started once Redis is healthy, checked by
// `/bot healthcheck`, restarted, its health port on loopback only, and
// pointed at the compose Redis; Redis pinned by digest, persistent (append
// only file on a named volume), checked with ping, not published on the host.
func composeProblems(doc map[string]any) []string {
	var problems []string
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	services, _ := doc["services"].(map[string]any)
	bot, _ := services["bot"].(map[string]any)
	redis, _ := services["redis"].(map[string]any)
	if bot == nil || redis == nil {
		fail("services bot and redis are both needed, got %v", keys(services))
		return problems
	}

	if bot["build"] != "." {
		fail("bot: build %v, want . (the Dockerfile here)", bot["build"])
	}
	if envFiles := stringList(bot["env_file"]); !slices.Contains(envFiles, ".env") {
		fail("bot: env_file %v, want .env", bot["env_file"])
	}
	declared, _ := doc["secrets"].(map[string]any)
	env := environment(bot["environment"])
	problems = append(problems, secretFileProblems("bot", bot, env, declared)...)
	if env["ALLOW_INSECURE_ENDPOINTS"] != "redis" {
		fail("bot: environment ALLOW_INSECURE_ENDPOINTS %q, want redis (plain redis:// on the compose network only; Slack and AWS stay https)", env["ALLOW_INSECURE_ENDPOINTS"])
	}
	problems = append(problems, hardeningProblems("bot", bot)...)
	if env := environment(bot["environment"]); env["HTTP_ADDR"] != ":8080" {
		fail("bot: environment HTTP_ADDR %q, want :8080 (the published port reaches the container's interface, not its 127.0.0.1; and .env, meant for running outside, must not change it)", env["HTTP_ADDR"])
	}
	deps, _ := bot["depends_on"].(map[string]any)
	if dep, _ := deps["redis"].(map[string]any); dep == nil || dep["condition"] != "service_healthy" {
		fail("bot: depends_on redis needs condition: service_healthy, got %v", bot["depends_on"])
	}
	if bot["restart"] != "unless-stopped" {
		fail("bot: restart %v, want unless-stopped", bot["restart"])
	}
	ports := stringList(bot["ports"])
	if len(ports) == 0 {
		fail("bot: no ports; publish 8080 (health, metrics) on 127.0.0.1")
	}
	for _, p := range ports {
		if !strings.HasPrefix(p, "127.0.0.1:") {
			fail("bot: port %q is published on every interface; bind it to 127.0.0.1", p)
		}
	}
	if test := healthTest(bot); !slices.Equal(test, []string{"CMD", "/bot", "healthcheck"}) {
		fail(`bot: healthcheck test %q, want ["CMD", "/bot", "healthcheck"] (no shell in the image)`, test)
	}

	image, _ := redis["image"].(string)
	if !strings.HasPrefix(image, "redis:7") || !digestPinned.MatchString(image) {
		fail("redis: image %q, want redis:7-...@sha256:<digest>", image)
	}
	cmd := strings.Join(stringList(redis["command"]), " ")
	if !strings.Contains(cmd, "--appendonly yes") {
		fail("redis: command %q does not turn on --appendonly yes", cmd)
	}
	if !slices.Contains(stringList(redis["secrets"]), "redis_password") || !secretFromFile(declared, "redis_password") {
		fail("redis: no secret redis_password (declared with file: ./secrets/redis_password) to require a password with")
	}
	if !regexp.MustCompile(`printf "requirepass %s\\n" "\$\$\(cat /run/secrets/redis_password\)" > /tmp/\S+\.conf && exec redis-server /tmp/\S+\.conf `).MatchString(cmd) {
		fail("redis: command %q does not require the password of /run/secrets/redis_password through a config file (requirepass)", cmd)
	}
	if strings.Contains(cmd, "--requirepass") {
		fail("redis: command %q puts the password on the command line, where ps shows it", cmd)
	}
	if u, _ := redis["user"].(string); u == "" || u == "0" || u == "root" || strings.HasPrefix(u, "0:") || strings.HasPrefix(u, "root:") {
		fail("redis: user %q, want the image's redis user (999:999), not root", u)
	}
	if redis["read_only"] == "true" && !slices.Contains(stringList(redis["tmpfs"]), "/tmp") {
		fail("redis: read_only without a tmpfs on /tmp, where the password's config file goes")
	}
	problems = append(problems, hardeningProblems("redis", redis)...)
	volumes, _ := doc["volumes"].(map[string]any)
	persisted := false
	for _, v := range stringList(redis["volumes"]) {
		name, dir, _ := strings.Cut(v, ":")
		if _, named := volumes[name]; named && strings.TrimSuffix(dir, ":rw") == "/data" {
			persisted = true
		}
	}
	if !persisted {
		fail("redis: no named volume (declared under top-level volumes) on /data, got %v", redis["volumes"])
	}
	if test := strings.Join(healthTest(redis), " "); !strings.Contains(test, `REDISCLI_AUTH="$$(cat /run/secrets/redis_password)" redis-cli ping`) || strings.Contains(test, " -a ") {
		fail("redis: healthcheck test %q does not run redis-cli ping with the password in REDISCLI_AUTH (not -a, which ps shows)", test)
	}
	for _, k := range []string{"ports", "network_mode"} {
		if _, ok := redis[k]; ok {
			fail("redis: %s set; Redis (no TLS) must not be reachable from the host", k)
		}
	}
	if redis["restart"] != "unless-stopped" {
		fail("redis: restart %v, want unless-stopped", redis["restart"])
	}
	return problems
}

// composeSecrets are the bot's settings that hold a secret, and the compose
// secret each comes from.
var composeSecrets = map[string]string{
	"SLACK_BOT_TOKEN":    "slack_bot_token",
	"SLACK_APP_TOKEN":    "slack_app_token",
	"LDAP_BIND_PASSWORD": "ldap_bind_password",
	"REDIS_URL":          "redis_url",
}

// otherSecrets are settings that hold a secret the compose file does not
// provide; they must not get a value in it either.
var otherSecrets = []string{"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "SMTP_PASSWORD", "STATE_KEY"}

// secretFromFile reports whether the top-level secret name is declared
// from a file under ./secrets (which .gitignore and .dockerignore keep out).
func secretFromFile(declared map[string]any, name string) bool {
	d, _ := declared[name].(map[string]any)
	return d != nil && d["file"] == "./secrets/"+name
}

// secretFileProblems checks that each secret of composeSecrets reaches the
// service as a file: NAME cleared (a value .env may hold does not count),
// NAME_FILE under /run/secrets, the secret given to the service and
// declared from ./secrets; that every other *_FILE setting names a secret
// the service has; and that no secret has a value in the file.
func secretFileProblems(name string, service map[string]any, env map[string]string, declared map[string]any) []string {
	var problems []string
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	given := stringList(service["secrets"])
	for setting, secret := range composeSecrets {
		if v, ok := env[setting]; !ok || v != "" {
			fail("%s: environment %s must be set to \"\" (so that a value in .env does not count), got %q", name, setting, v)
		}
		if env[setting+"_FILE"] != "/run/secrets/"+secret {
			fail("%s: environment %s_FILE %q, want /run/secrets/%s", name, setting, env[setting+"_FILE"], secret)
		}
		if !slices.Contains(given, secret) {
			fail("%s: secrets %v lack %s", name, given, secret)
		}
		if !secretFromFile(declared, secret) {
			fail("secrets: %s is not declared with file: ./secrets/%s", secret, secret)
		}
	}
	for setting, v := range env {
		if strings.HasSuffix(setting, "_FILE") && (!strings.HasPrefix(v, "/run/secrets/") || !slices.Contains(given, strings.TrimPrefix(v, "/run/secrets/"))) {
			fail("%s: environment %s %q is not a secret the service has (/run/secrets/NAME)", name, setting, v)
		}
	}
	for _, setting := range otherSecrets {
		if env[setting] != "" {
			fail("%s: environment %s has a value; a secret comes from a file (%s_FILE)", name, setting, setting)
		}
	}
	return problems
}

// hardeningProblems wants the service's root file system read-only, every
// capability dropped and no way to gain privileges (setuid binaries).
func hardeningProblems(name string, service map[string]any) []string {
	var problems []string
	if service["read_only"] != "true" {
		problems = append(problems, fmt.Sprintf("%s: read_only %v, want true", name, service["read_only"]))
	}
	if drop := stringList(service["cap_drop"]); !slices.Equal(drop, []string{"ALL"}) {
		problems = append(problems, fmt.Sprintf("%s: cap_drop %q, want [ALL]", name, drop))
	}
	if !slices.Contains(stringList(service["security_opt"]), "no-new-privileges:true") {
		problems = append(problems, fmt.Sprintf("%s: security_opt %q lacks no-new-privileges:true", name, stringList(service["security_opt"])))
	}
	if add := stringList(service["cap_add"]); len(add) > 0 {
		problems = append(problems, fmt.Sprintf("%s: cap_add %q gives capabilities back", name, add))
	}
	if service["privileged"] == "true" {
		problems = append(problems, fmt.Sprintf("%s: privileged", name))
	}
	return problems
}

func healthTest(service map[string]any) []string {
	hc, _ := service["healthcheck"].(map[string]any)
	return stringList(hc["test"])
}

// stringList reads a scalar or a list of scalars.
func stringList(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// environment reads compose's environment in either form: a mapping, or a
// list of NAME=value.
func environment(v any) map[string]string {
	out := map[string]string{}
	if m, ok := v.(map[string]any); ok {
		for k, e := range m {
			out[k], _ = e.(string)
		}
		return out
	}
	for _, e := range stringList(v) {
		k, val, _ := strings.Cut(e, "=")
		out[k] = val
	}
	return out
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func composeFileProblems(s string) []string {
	doc, err := parseYAMLSubset(s)
	if err != nil {
		return []string{err.Error()}
	}
	return composeProblems(doc)
}

func TestCompose(t *testing.T) {
	s := readRepoFile(t, "docker-compose.yml")
	for _, p := range composeFileProblems(s) {
		t.Error("docker-compose.yml: " + p)
	}
	checkBreakages(t, s, []breakage{
		brk("started before Redis is healthy", "condition: service_healthy", "condition: service_started"),
		brk("Redis published on the host", "    volumes:\n      - redis-data:/data\n", "    volumes:\n      - redis-data:/data\n    ports:\n      - \"6379:6379\"\n"),
		brk("no persistence", `--appendonly yes'`, `--appendonly no'`),
		brk("Redis data not on the named volume", "- redis-data:/data", "- /tmp/redis:/data"),
		brk("an unpinned Redis", "redis:7-bookworm@sha256:", "redis:7-bookworm #sha256:"),
		brk("settings not from .env", "env_file: .env", "env_file: settings.env"),
		brk("no REDIS_URL_FILE", "REDIS_URL_FILE: /run/secrets/redis_url", "REDIS_URL_UNUSED: /run/secrets/redis_url"),
		brk("a plain REDIS_URL", `REDIS_URL: ""`, "REDIS_URL: redis://redis:6379/0"),
		brk("a token in the environment", `SLACK_BOT_TOKEN: ""`, "SLACK_BOT_TOKEN: xoxb-1-abc"),
		brk(".env's token not cleared", "      SLACK_APP_TOKEN: \"\"\n", ""),
		brk("a token file elsewhere", "SLACK_BOT_TOKEN_FILE: /run/secrets/slack_bot_token", "SLACK_BOT_TOKEN_FILE: /etc/resetbot/token"),
		brk("a secret not given to the bot", "      - slack_app_token\n", ""),
		brk("a secret file outside ./secrets", "file: ./secrets/redis_url", "file: ./redis_url"),
		brk("a secret from the environment", "    file: ./secrets/ldap_bind_password", "    environment: LDAP_BIND_PASSWORD"),
		brk("another secret's value", "      ALLOW_INSECURE_ENDPOINTS: redis\n", "      ALLOW_INSECURE_ENDPOINTS: redis\n      AWS_SECRET_ACCESS_KEY: abc\n"),
		brk("a *_FILE that is not a secret", "      ALLOW_INSECURE_ENDPOINTS: redis\n", "      ALLOW_INSECURE_ENDPOINTS: redis\n      ACCOUNT_MAP_FILE: /etc/map\n"),
		brk("every kind of plain text allowed", "ALLOW_INSECURE_ENDPOINTS: redis", `ALLOW_INSECURE_ENDPOINTS: "true"`),
		brk("a writable bot", "    read_only: true\n    cap_drop: [ALL]\n    security_opt: [\"no-new-privileges:true\"]\n    depends_on:", "    cap_drop: [ALL]\n    security_opt: [\"no-new-privileges:true\"]\n    depends_on:"),
		brk("capabilities kept", "cap_drop: [ALL]", "cap_drop: [NET_RAW]"),
		brk("a capability given back", "    cap_drop: [ALL]\n    security_opt: [\"no-new-privileges:true\"]\n    depends_on:", "    cap_drop: [ALL]\n    cap_add: [NET_ADMIN]\n    security_opt: [\"no-new-privileges:true\"]\n    depends_on:"),
		brk("privileges may be gained", `"no-new-privileges:true"`, `"no-new-privileges:false"`),
		brk("Redis without a password", `'umask 077 && printf "requirepass %s\n" "$$(cat /run/secrets/redis_password)" > /tmp/redis-auth.conf && exec redis-server /tmp/redis-auth.conf --appendonly yes'`, `'exec redis-server --appendonly yes'`),
		brk("Redis's password on its command line", `'umask 077 && printf "requirepass %s\n" "$$(cat /run/secrets/redis_password)" > /tmp/redis-auth.conf && exec redis-server /tmp/redis-auth.conf --appendonly yes'`, `'umask 077 && printf "requirepass %s\n" "$$(cat /run/secrets/redis_password)" > /tmp/redis-auth.conf && exec redis-server /tmp/redis-auth.conf --appendonly yes --requirepass "$$(cat /run/secrets/redis_password)"'`),
		brk("Redis without its secret", "      - redis_password\n", ""),
		brk("Redis as root", `user: "999:999"`, `user: "0:0"`),
		brk("Redis writable", "    read_only: true\n    tmpfs:", "    tmpfs:"),
		brk("Redis read-only without a /tmp", "    tmpfs:\n      - /tmp\n", ""),
		brk("a Redis healthcheck without the password", `REDISCLI_AUTH="$$(cat /run/secrets/redis_password)" redis-cli ping`, `redis-cli ping`),
		brk("a Redis healthcheck with the password in its arguments", `REDISCLI_AUTH="$$(cat /run/secrets/redis_password)" redis-cli ping`, `redis-cli -a "$$(cat /run/secrets/redis_password)" ping`),
		brk("HTTP_ADDR left to .env", `HTTP_ADDR: ":8080"`, `HTTP_ADDR_UNUSED: ":8080"`),
		brk("health port on every interface", `"127.0.0.1:8080:8080"`, `"8080:8080"`),
		brk("a bot healthcheck that needs a shell", `["CMD", "/bot", "healthcheck"]`, `["CMD-SHELL", "curl -f http://127.0.0.1:8080/healthz"]`),
		brk("no Redis healthcheck", "redis-cli ping", "redis-cli info"),
		brk("no restart", "restart: unless-stopped\n    # /healthz", "restart: \"no\"\n    # /healthz"),
		brk("a duplicate key", "    restart: unless-stopped\n    # /healthz", "    restart: unless-stopped\n    restart: always\n    # /healthz"),
		brk("a tab in the indentation", "    build: .", "\tbuild: ."),
		brk("an anchor this parser does not read", "\n  redis:\n", "\n  redis: &redis\n"),
	}, composeFileProblems)

	// The secret files compose reads stay out of git (and, above, out of
	// the image's build context).
	if !slices.Contains(strings.Split(readRepoFile(t, ".gitignore"), "\n"), "secrets/") {
		t.Error(".gitignore: does not list secrets/, where docker-compose.yml's secret files live")
	}

	// Where a compose CLI is installed, it must accept the file too. It
	// needs no engine for `config`, but it wants the env_file to exist.
	cli := composeCLI()
	if cli == nil {
		t.Log("no docker compose CLI here: checked docker-compose.yml with the YAML subset parser only")
		return
	}
	dir := t.TempDir()
	files := map[string]string{"docker-compose.yml": s, ".env": "", "Dockerfile": "FROM scratch\n"}
	for _, secret := range []string{"slack_bot_token", "slack_app_token", "ldap_bind_password", "redis_url", "redis_password"} {
		files[filepath.Join("secrets", secret)] = ""
	}
	if err := os.Mkdir(filepath.Join(dir, "secrets"), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, cli[0], append(cli[1:], "-f", filepath.Join(dir, "docker-compose.yml"), "config", "--quiet")...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("%s config: %v\n%s", strings.Join(cli, " "), err, out)
	}
}

// composeCLI is the command that runs compose here: the docker CLI's plugin,
// the old docker-compose, or nil.
func composeCLI() []string {
	if _, err := exec.LookPath("docker"); err == nil {
		if exec.Command("docker", "compose", "version").Run() == nil {
			return []string{"docker", "compose"}
		}
	}
	if _, err := exec.LookPath("docker-compose"); err == nil {
		return []string{"docker-compose"}
	}
	return nil
}

// --- a strict reader of the YAML that docker-compose.yml uses ---

// parseYAMLSubset reads block mappings and sequences of scalars (plain,
// 'single' or "double" quoted, or a one-line [flow, list]) with comments. It
// refuses what it does not understand (anchors, tags, flow mappings, block
// scalars, several documents, tabs) and duplicate keys, rather than guess,
// so that the checks above never look at a misread file.
func parseYAMLSubset(src string) (map[string]any, error) {
	var lines []yamlLine
	for i, raw := range strings.Split(src, "\n") {
		raw = strings.TrimRight(raw, " \r")
		body := strings.TrimLeft(raw, " ")
		if strings.HasPrefix(body, "\t") || strings.Contains(raw[:len(raw)-len(body)], "\t") {
			return nil, fmt.Errorf("line %d: a tab in the indentation", i+1)
		}
		body, err := stripComment(body)
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", i+1, err)
		}
		if body == "" {
			continue
		}
		if body == "---" || body == "..." || strings.HasPrefix(body, "%") {
			return nil, fmt.Errorf("line %d: %q: one document without directives only", i+1, body)
		}
		lines = append(lines, yamlLine{no: i + 1, indent: len(raw) - len(strings.TrimLeft(raw, " ")), text: body})
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("empty document")
	}
	if lines[0].indent != 0 {
		return nil, fmt.Errorf("line %d: the document starts indented", lines[0].no)
	}
	p := &yamlParser{lines: lines}
	v, err := p.block(0)
	if err != nil {
		return nil, err
	}
	if p.i < len(p.lines) {
		return nil, fmt.Errorf("line %d: unexpected indentation", p.lines[p.i].no)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("the document is not a mapping")
	}
	return m, nil
}

type yamlLine struct {
	no, indent int
	text       string
}

type yamlParser struct {
	lines []yamlLine
	i     int
}

// stripComment drops a # comment that starts the line or follows a space,
// outside quotes (a quote opens a scalar only where one can start).
func stripComment(s string) (string, error) {
	var quote rune
	for i, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case (r == '"' || r == '\'') && (i == 0 || strings.ContainsRune(" [,", rune(s[i-1]))):
			quote = r
		case r == '#' && (i == 0 || s[i-1] == ' '):
			return strings.TrimRight(s[:i], " "), nil
		}
	}
	if quote != 0 {
		return "", fmt.Errorf("an unterminated quote")
	}
	return s, nil
}

func isSeqItem(text string) bool { return text == "-" || strings.HasPrefix(text, "- ") }

// block reads the mapping or sequence whose lines start at indent.
func (p *yamlParser) block(indent int) (any, error) {
	if isSeqItem(p.lines[p.i].text) {
		return p.sequence(indent)
	}
	return p.mapping(indent)
}

func (p *yamlParser) mapping(indent int) (map[string]any, error) {
	m := map[string]any{}
	for p.i < len(p.lines) && p.lines[p.i].indent == indent && !isSeqItem(p.lines[p.i].text) {
		l := p.lines[p.i]
		key, rest, ok := splitKey(l.text)
		if !ok {
			return nil, fmt.Errorf("line %d: %q is not key: value", l.no, l.text)
		}
		if _, dup := m[key]; dup {
			return nil, fmt.Errorf("line %d: duplicate key %q", l.no, key)
		}
		p.i++
		if rest != "" {
			v, err := scalarOrFlow(rest)
			if err != nil {
				return nil, fmt.Errorf("line %d: %v", l.no, err)
			}
			m[key] = v
			continue
		}
		switch {
		case p.i < len(p.lines) && p.lines[p.i].indent > indent:
			v, err := p.block(p.lines[p.i].indent)
			if err != nil {
				return nil, err
			}
			m[key] = v
		case p.i < len(p.lines) && p.lines[p.i].indent == indent && isSeqItem(p.lines[p.i].text):
			v, err := p.sequence(indent)
			if err != nil {
				return nil, err
			}
			m[key] = v
		default:
			m[key] = nil
		}
	}
	if p.i < len(p.lines) && p.lines[p.i].indent > indent {
		return nil, fmt.Errorf("line %d: unexpected indentation", p.lines[p.i].no)
	}
	return m, nil
}

func (p *yamlParser) sequence(indent int) ([]any, error) {
	var s []any
	for p.i < len(p.lines) && p.lines[p.i].indent == indent && isSeqItem(p.lines[p.i].text) {
		l := p.lines[p.i]
		item := strings.TrimLeft(strings.TrimPrefix(l.text, "-"), " ")
		if item == "" {
			p.i++
			if p.i >= len(p.lines) || p.lines[p.i].indent <= indent {
				s = append(s, nil)
				continue
			}
			v, err := p.block(p.lines[p.i].indent)
			if err != nil {
				return nil, err
			}
			s = append(s, v)
			continue
		}
		if _, _, isMap := splitKey(item); isMap {
			// "- key: value" starts a mapping indented to where its key is.
			inner := indent + len(l.text) - len(item)
			p.lines[p.i] = yamlLine{no: l.no, indent: inner, text: item}
			v, err := p.mapping(inner)
			if err != nil {
				return nil, err
			}
			s = append(s, v)
			continue
		}
		v, err := scalarOrFlow(item)
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", l.no, err)
		}
		s = append(s, v)
		p.i++
	}
	if p.i < len(p.lines) && p.lines[p.i].indent > indent {
		return nil, fmt.Errorf("line %d: unexpected indentation", p.lines[p.i].no)
	}
	return s, nil
}

// splitKey splits "key: value" or "key:" at the first ": " outside quotes.
func splitKey(text string) (key, rest string, ok bool) {
	var quote rune
	for i, r := range text {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '"' || r == '\'':
			if i == 0 {
				quote = r
			}
		case r == ':' && (i == len(text)-1 || text[i+1] == ' '):
			k, err := scalar(strings.TrimSpace(text[:i]))
			if err != nil || k == "" {
				return "", "", false
			}
			return k, strings.TrimSpace(text[i+1:]), true
		}
	}
	return "", "", false
}

// scalarOrFlow reads a scalar or a one-line flow sequence of scalars.
func scalarOrFlow(s string) (any, error) {
	if !strings.HasPrefix(s, "[") {
		return scalar(s)
	}
	if !strings.HasSuffix(s, "]") {
		return nil, fmt.Errorf("%q: a flow sequence must end on its line", s)
	}
	var items []any
	inner := strings.TrimSpace(s[1 : len(s)-1])
	if inner == "" {
		return items, nil
	}
	var quote rune
	start := 0
	for i, r := range inner + "," {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '"' || r == '\'':
			quote = r
		case r == '[' || r == '{':
			return nil, fmt.Errorf("%q: nested flow collections are not read here", s)
		case r == ',':
			v, err := scalar(strings.TrimSpace(inner[start:min(i, len(inner))]))
			if err != nil {
				return nil, err
			}
			items = append(items, v)
			start = i + 1
		}
	}
	return items, nil
}

// scalar reads a plain, 'single' or "double" quoted scalar as a string.
func scalar(s string) (string, error) {
	switch {
	case s == "":
		return "", fmt.Errorf("an empty value here")
	case strings.HasPrefix(s, `"`):
		v, err := strconv.Unquote(s)
		if err != nil || !strings.HasSuffix(s, `"`) {
			return "", fmt.Errorf("%s: a bad double-quoted scalar", s)
		}
		return v, nil
	case strings.HasPrefix(s, "'"):
		if len(s) < 2 || !strings.HasSuffix(s, "'") || strings.Contains(strings.ReplaceAll(s[1:len(s)-1], "''", ""), "'") {
			return "", fmt.Errorf("%s: a bad single-quoted scalar", s)
		}
		return strings.ReplaceAll(s[1:len(s)-1], "''", "'"), nil
	case strings.ContainsAny(s[:1], "&*!|>{}[]@`%,?"):
		return "", fmt.Errorf("%q: anchors, aliases, tags, block scalars and flow mappings are not read here", s)
	case strings.Contains(s, " #") || strings.Contains(s, ": "):
		return "", fmt.Errorf("%q: an ambiguous plain scalar", s)
	}
	return s, nil
}
