// Package check renders the Helm chart in deploy/helm/resetbot with the real
// helm (helm.sh/helm/v4, a tool of this module: `go tool helm`), and checks
// the result offline: every object decodes strictly (unknown fields refused)
// into the Kubernetes API types of its apiVersion and kind, and the chart
// keeps its promises (probes, non-root, read-only root, no capabilities,
// secrets as files or secretKeyRefs, Redis for replicas > 1). The rendered
// Deployment's environment, with its secret files, is given to the bot's
// own configuration loader, which must accept it.
//
// It is a module of its own so that helm and the Kubernetes modules stay out
// of the bot's go.mod. scripts/test.sh runs it.
package check

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/example/resetbot/config"
)

const chart = "../resetbot"

// helm runs the helm tool of this module.
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("go", append([]string{"tool", "helm"}, args...)...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String() + errb.String(), err
	}
	return out.String(), nil
}

// minimal are the fewest values the chart renders with: one replica, the
// embedded store, the chart's own Secret.
var minimal = []string{
	"--set", "config.DIRECTORY_ID=d-1234567890", "--set", "config.AWS_REGION=eu-west-1",
	"--set", "config.APPROVERS=U0123ABCD", "--set", "config.ALLOWED_EMAIL_DOMAINS=corp.example.com",
	"--set", "secrets.slackBotToken=xoxb-test-bot-token", "--set", "secrets.slackAppToken=xapp-test-app-token",
	"--set-string", "config.ALLOW_UNCHECKED_ACCOUNTS=true",
}

// rendered is the output of helm template, decoded.
type rendered struct {
	deployment     *appsv1.Deployment
	secret         *corev1.Secret
	service        *corev1.Service
	serviceAccount *corev1.ServiceAccount
	serviceMonitor *monitoringv1.ServiceMonitor
}

// render runs helm template with args and decodes every object strictly.
func render(t *testing.T, args ...string) rendered {
	t.Helper()
	out, err := helm(t, append([]string{"template", "rb", chart, "--namespace", "resetbot"}, args...)...)
	if err != nil {
		t.Fatalf("helm template %v: %v\n%s", args, err, out)
	}
	var r rendered
	for _, doc := range strings.Split(out, "\n---") {
		if strings.TrimSpace(strings.TrimPrefix(doc, "---")) == "" {
			continue
		}
		var head struct{ APIVersion, Kind string }
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("a rendered document is not YAML: %v\n%s", err, doc)
		}
		var into any
		var want string
		switch head.Kind {
		case "Deployment":
			r.deployment, into, want = &appsv1.Deployment{}, &r.deployment, "apps/v1"
		case "Secret":
			r.secret, into, want = &corev1.Secret{}, &r.secret, "v1"
		case "Service":
			r.service, into, want = &corev1.Service{}, &r.service, "v1"
		case "ServiceAccount":
			r.serviceAccount, into, want = &corev1.ServiceAccount{}, &r.serviceAccount, "v1"
		case "ServiceMonitor":
			r.serviceMonitor, into, want = &monitoringv1.ServiceMonitor{}, &r.serviceMonitor, "monitoring.coreos.com/v1"
		default:
			t.Fatalf("the chart renders a %s %s this check does not know", head.APIVersion, head.Kind)
		}
		if head.APIVersion != want {
			t.Errorf("%s has apiVersion %q, want %q", head.Kind, head.APIVersion, want)
		}
		js, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(js))
		dec.DisallowUnknownFields()
		// into is a pointer to the field holding a fresh object.
		if err := dec.Decode(reflectElem(into)); err != nil {
			t.Errorf("%s does not decode strictly into %s: %v\n%s", head.Kind, want, err, doc)
		}
	}
	if r.deployment == nil {
		t.Fatalf("no Deployment rendered:\n%s", out)
	}
	return r
}

// reflectElem returns the object a **T points at.
func reflectElem(p any) any {
	switch p := p.(type) {
	case **appsv1.Deployment:
		return *p
	case **corev1.Secret:
		return *p
	case **corev1.Service:
		return *p
	case **corev1.ServiceAccount:
		return *p
	case **monitoringv1.ServiceMonitor:
		return *p
	}
	panic(fmt.Sprintf("unknown %T", p))
}

func TestLint(t *testing.T) {
	for _, args := range [][]string{minimal, {"--values", chart + "/ci/ha-values.yaml"}} {
		if out, err := helm(t, append([]string{"lint", chart, "--strict"}, args...)...); err != nil {
			t.Errorf("helm lint %v: %v\n%s", args, err, out)
		}
	}
}

// container is the bot's container.
func container(t *testing.T, r rendered) corev1.Container {
	t.Helper()
	cs := r.deployment.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("%d containers", len(cs))
	}
	return cs[0]
}

func env(c corev1.Container) map[string]corev1.EnvVar {
	m := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		m[e.Name] = e
	}
	return m
}

// TestChartPromises checks the Deployment of the minimal values: probes,
// security, the listener, secrets as files.
func TestChartPromises(t *testing.T) {
	r := render(t, minimal...)
	pod := r.deployment.Spec.Template.Spec
	c := container(t, r)
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" || c.LivenessProbe.HTTPGet.Port.String() != "http" {
		t.Errorf("liveness probe %+v, want GET /healthz on http", c.LivenessProbe)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("readiness probe %+v, want GET /readyz", c.ReadinessProbe)
	}
	if len(c.Ports) != 1 || c.Ports[0].Name != "http" || c.Ports[0].ContainerPort != 8080 {
		t.Errorf("ports %+v", c.Ports)
	}
	psc, sc := pod.SecurityContext, c.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != 65532 {
		t.Errorf("pod security context %+v, want runAsNonRoot and uid 65532 (the image's)", psc)
	}
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("container security context %+v, want a read-only root, no privilege escalation, all capabilities dropped", sc)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the service account token is mounted; the bot calls no Kubernetes API")
	}
	e := env(c)
	if e["HTTP_ADDR"].Value != ":8080" {
		t.Errorf("HTTP_ADDR %q, want :8080 (the bot's default is 127.0.0.1, which the kubelet's probes do not reach)", e["HTTP_ADDR"].Value)
	}
	if *r.deployment.Spec.Replicas != 1 {
		t.Errorf("replicas %d", *r.deployment.Spec.Replicas)
	}
	// Secrets: files, never values in the environment.
	for _, k := range []string{"SLACK_BOT_TOKEN", "SLACK_APP_TOKEN"} {
		if e[k+"_FILE"].Value != "/run/secrets/resetbot/"+k {
			t.Errorf("%s_FILE = %q", k, e[k+"_FILE"].Value)
		}
		if _, ok := e[k]; ok {
			t.Errorf("%s is in the environment in files mode", k)
		}
		if r.secret == nil || r.secret.StringData[k] == "" {
			t.Errorf("the chart-made Secret lacks %s", k)
		}
	}
	for _, ev := range c.Env {
		if strings.Contains(ev.Value, "xoxb-") || strings.Contains(ev.Value, "xapp-") {
			t.Errorf("a token in the environment: %s", ev.Name)
		}
	}
	mounted := false
	for _, m := range c.VolumeMounts {
		if m.MountPath == "/run/secrets/resetbot" && m.ReadOnly {
			mounted = true
		}
	}
	if !mounted {
		t.Error("the Secret is not mounted read-only at /run/secrets/resetbot")
	}
	if r.serviceMonitor != nil {
		t.Error("a ServiceMonitor without serviceMonitor.enabled")
	}
	checkBotAccepts(t, r)
}

// checkBotAccepts gives the bot's configuration loader the Deployment's
// environment, with the Secret's values as the files it mounts.
func checkBotAccepts(t *testing.T, r rendered) {
	t.Helper()
	c := container(t, r)
	dir := t.TempDir()
	vars := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			vars[e.Name] = r.secret.StringData[e.ValueFrom.SecretKeyRef.Key]
		case strings.HasSuffix(e.Name, "_FILE") && strings.HasPrefix(e.Value, "/run/secrets/resetbot/"):
			key := strings.TrimPrefix(e.Value, "/run/secrets/resetbot/")
			path := filepath.Join(dir, key)
			if err := os.WriteFile(path, []byte(r.secret.StringData[key]), 0o600); err != nil {
				t.Fatal(err)
			}
			vars[e.Name] = path
		default:
			vars[e.Name] = e.Value
		}
	}
	if _, err := config.Load(func(k string) string { return vars[k] }); err != nil {
		t.Errorf("the bot refuses the rendered configuration: %v", err)
	}
}

// TestHighAvailability: three replicas on Redis, LDAP, a ServiceMonitor.
func TestHighAvailability(t *testing.T) {
	r := render(t, "--values", chart+"/ci/ha-values.yaml")
	if *r.deployment.Spec.Replicas != 3 {
		t.Errorf("replicas %d", *r.deployment.Spec.Replicas)
	}
	e := env(container(t, r))
	for _, k := range []string{"REDIS_URL", "LDAP_BIND_PASSWORD", "STATE_KEY"} {
		if e[k+"_FILE"].Value != "/run/secrets/resetbot/"+k || r.secret.StringData[k] == "" {
			t.Errorf("%s is not a mounted secret: %+v", k, e[k+"_FILE"])
		}
	}
	if e["LDAP_BIND_DN"].Value != "CN=svc-resetbot,OU=Service Accounts,DC=corp,DC=example,DC=com" {
		t.Errorf("LDAP_BIND_DN %q", e["LDAP_BIND_DN"].Value)
	}
	if !strings.Contains(container(t, r).Image, "@sha256:") {
		t.Errorf("image %q not pinned by its digest", container(t, r).Image)
	}
	sm := r.serviceMonitor
	if sm == nil || len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Path != "/metrics" || sm.Spec.Endpoints[0].Port != "http" {
		t.Fatalf("ServiceMonitor %+v", sm)
	}
	if r.service == nil || r.service.Spec.Ports[0].TargetPort.String() != "http" {
		t.Errorf("Service %+v", r.service)
	}
	for k, v := range sm.Spec.Selector.MatchLabels {
		if r.service.Labels[k] != v {
			t.Errorf("the ServiceMonitor's selector %s=%s does not select the Service", k, v)
		}
	}
	checkBotAccepts(t, r)
}

// TestExistingSecretAsEnv: a Secret of one's own, by name, read through
// secretKeyRefs; the chart makes none.
func TestExistingSecretAsEnv(t *testing.T) {
	r := render(t, append(slices.Clone(minimal[:8]), "--set", "secrets.existingSecret=my-resetbot", "--set", "secrets.mode=env",
		"--set", "secrets.existingSecretKeys={REDIS_URL}", "--set", "replicaCount=2")...)
	if r.secret != nil {
		t.Error("a Secret was made although existingSecret names one")
	}
	e := env(container(t, r))
	for _, k := range []string{"SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "REDIS_URL"} {
		ref := e[k].ValueFrom
		if ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != "my-resetbot" || ref.SecretKeyRef.Key != k {
			t.Errorf("%s: %+v, want a secretKeyRef to my-resetbot/%s", k, e[k], k)
		}
	}
	for _, v := range r.deployment.Spec.Template.Spec.Volumes {
		if v.Secret != nil {
			t.Errorf("a Secret volume in env mode: %+v", v)
		}
	}
}

// TestRefusals: values that cannot work fail the render with what to fix.
func TestRefusals(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--set", "replicaCount=2"}, "more than one replica needs Redis"},
		{[]string{"--set", "secrets.slackBotToken="}, "secrets.slackBotToken is required"},
		{[]string{"--set", "secrets.mode=volume"}, `secrets.mode "volume" must be files`},
		{[]string{"--set", "config.SLACK_BOT_TOKEN=xoxb-1"}, "config.SLACK_BOT_TOKEN is a secret"},
		{[]string{"--set", "secrets.existingSecret=x", "--set", "secrets.existingSecretKeys={SMTP}"}, `"SMTP" is not one of`},
		{[]string{"--set", "serviceMonitor.enabled=true", "--set", "service.enabled=false"}, "serviceMonitor.enabled needs service.enabled"},
	} {
		out, err := helm(t, append(append([]string{"template", "rb", chart}, minimal...), tc.args...)...)
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("%v: %v, want a failure saying %q:\n%s", tc.args, err, tc.want, out)
		}
	}
	// Redis makes replicas possible.
	render(t, append(slices.Clone(minimal), "--set", "replicaCount=2", "--set", "secrets.redisURL=rediss://r:6379/0")...)
}
