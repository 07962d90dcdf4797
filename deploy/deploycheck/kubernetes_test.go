package deploycheck

import (
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/rosterd/roster/config"
)

// kustomization is the part of kustomize's Kustomization that
// deploy/kubernetes uses; strict decoding rejects anything else (add the
// field here when the kustomization grows).
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace,omitempty"`
	Resources  []string `json:"resources"`
	Labels     []struct {
		Pairs            map[string]string `json:"pairs"`
		IncludeSelectors bool              `json:"includeSelectors,omitempty"`
	} `json:"labels,omitempty"`
}

// manifests are the decoded objects of deploy/kubernetes.
type manifests struct {
	deployments []*appsv1.Deployment
	services    []*corev1.Service
	configMaps  []*corev1.ConfigMap
	secrets     []*corev1.Secret
	pdbs        []*policyv1.PodDisruptionBudget
	monitors    []*monitoringv1.ServiceMonitor
	files       []string
}

// splitYAML splits a multi-document YAML file on lines that are "---".
func splitYAML(data []byte) [][]byte {
	var docs [][]byte
	for _, d := range bytes.Split(append([]byte("\n"), data...), []byte("\n---")) {
		if len(bytes.TrimSpace(stripComments(d))) > 0 {
			docs = append(docs, d)
		}
	}
	return docs
}

func stripComments(d []byte) []byte {
	var out [][]byte
	for _, l := range bytes.Split(d, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(l), []byte("#")) {
			out = append(out, l)
		}
	}
	return bytes.Join(out, []byte("\n"))
}

// loadManifests strictly decodes every document of every manifest into
// its Kubernetes API type: an unknown or misspelt field is an error.
func loadManifests(t *testing.T) *manifests {
	t.Helper()
	dir := filepath.Join(deployDir, "kubernetes")
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s (%v)", dir, err)
	}
	m := &manifests{}
	for _, file := range files {
		name := filepath.Base(file)
		m.files = append(m.files, name)
		for i, doc := range splitYAML(readFile(t, file)) {
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal(doc, &tm); err != nil {
				t.Fatalf("%s document %d: %v", name, i+1, err)
			}
			strict := func(apiVersion string, into any) {
				t.Helper()
				if tm.APIVersion != apiVersion {
					t.Errorf("%s: %s has apiVersion %s, want %s", name, tm.Kind, tm.APIVersion, apiVersion)
				}
				if err := yaml.UnmarshalStrict(doc, into); err != nil {
					t.Errorf("%s document %d (%s): %v", name, i+1, tm.Kind, err)
				}
			}
			switch tm.Kind {
			case "Deployment":
				o := &appsv1.Deployment{}
				strict("apps/v1", o)
				m.deployments = append(m.deployments, o)
			case "Service":
				o := &corev1.Service{}
				strict("v1", o)
				m.services = append(m.services, o)
			case "ConfigMap":
				o := &corev1.ConfigMap{}
				strict("v1", o)
				m.configMaps = append(m.configMaps, o)
			case "Secret":
				o := &corev1.Secret{}
				strict("v1", o)
				m.secrets = append(m.secrets, o)
			case "PodDisruptionBudget":
				o := &policyv1.PodDisruptionBudget{}
				strict("policy/v1", o)
				m.pdbs = append(m.pdbs, o)
			case "ServiceMonitor":
				o := &monitoringv1.ServiceMonitor{}
				strict("monitoring.coreos.com/v1", o)
				m.monitors = append(m.monitors, o)
			case "Kustomization":
				var k kustomization
				strict("kustomize.config.k8s.io/v1beta1", &k)
				for _, r := range k.Resources {
					if _, err := os.Stat(filepath.Join(dir, r)); err != nil {
						t.Errorf("%s: resource %s: %v", name, r, err)
					}
				}
				for _, f := range files {
					if b := filepath.Base(f); b != name && !slices.Contains(k.Resources, b) {
						t.Errorf("%s does not list %s", name, b)
					}
				}
			default:
				t.Errorf("%s document %d: kind %q is not checked by this test: add it", name, i+1, tm.Kind)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return m
}

func TestKubernetesManifests(t *testing.T) {
	m := loadManifests(t)
	if len(m.deployments) != 1 || len(m.services) != 1 || len(m.configMaps) != 1 ||
		len(m.pdbs) != 1 || len(m.monitors) != 1 {
		t.Fatalf("want one each of Deployment, Service, ConfigMap, PDB, ServiceMonitor in %v", m.files)
	}
	// The Secret with the DSN is created first, with kubectl as the docs
	// say (or a secret manager); one in the kustomization would overwrite
	// it with a placeholder at every apply.
	if len(m.secrets) != 0 {
		t.Errorf("deploy/kubernetes carries a Secret: `kubectl apply -k` would overwrite the one created with kubectl create secret")
	}
	d, svc, cm, pdb, sm := m.deployments[0], m.services[0], m.configMaps[0], m.pdbs[0], m.monitors[0]
	sec := docsSecret(t)
	pod := d.Spec.Template
	podLabels := labels.Set(pod.Labels)

	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
		t.Errorf("Deployment: want 2 or more replicas")
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || !sel.Matches(podLabels) {
		t.Errorf("Deployment: selector %v does not match the pod labels %v (%v)", d.Spec.Selector, pod.Labels, err)
	}
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) || len(svc.Spec.Selector) == 0 {
		t.Errorf("Service %s: selector %v does not match the pod labels %v", svc.Name, svc.Spec.Selector, pod.Labels)
	}
	if sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector); err != nil || !sel.Matches(podLabels) {
		t.Errorf("PodDisruptionBudget: selector does not match the pod labels (%v)", err)
	}
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() < 1 {
		t.Errorf("PodDisruptionBudget: want minAvailable 1")
	}

	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("want one container, have %d", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	portOK := func(what string, p intstr.IntOrString) {
		t.Helper()
		if p.Type == intstr.String {
			if _, ok := ports[p.StrVal]; !ok {
				t.Errorf("%s: port %q is not a container port (%v)", what, p.StrVal, ports)
			}
			return
		}
		if !slices.Contains(slices.Collect(maps.Values(ports)), p.IntVal) {
			t.Errorf("%s: port %d is not a container port (%v)", what, p.IntVal, ports)
		}
	}
	probe := func(what string, p *corev1.Probe, path string) {
		t.Helper()
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s: want an httpGet probe of %s", what, path)
			return
		}
		if p.HTTPGet.Path != path {
			t.Errorf("%s: path %s, want %s", what, p.HTTPGet.Path, path)
		}
		portOK(what, p.HTTPGet.Port)
	}
	probe("livenessProbe", c.LivenessProbe, "/healthz")
	probe("readinessProbe", c.ReadinessProbe, "/readyz")
	if c.StartupProbe != nil {
		probe("startupProbe", c.StartupProbe, "/healthz")
	}
	svcPorts := map[string]bool{}
	for _, p := range svc.Spec.Ports {
		portOK("Service port "+p.Name, p.TargetPort)
		svcPorts[p.Name] = true
	}
	for _, e := range sm.Spec.Endpoints {
		if !svcPorts[e.Port] {
			t.Errorf("ServiceMonitor: endpoint port %q is not a Service port", e.Port)
		}
	}
	if !labels.SelectorFromSet(sm.Spec.Selector.MatchLabels).Matches(labels.Set(svc.Labels)) {
		t.Errorf("ServiceMonitor: selector %v does not match the Service labels %v", sm.Spec.Selector.MatchLabels, svc.Labels)
	}

	// Resources and hardening.
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("container: want cpu and memory requests and a memory limit")
	}
	ps, cs := pod.Spec.SecurityContext, c.SecurityContext
	if ps == nil || cs == nil {
		t.Fatal("want pod and container securityContext")
	}
	if ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot {
		t.Error("pod: runAsNonRoot is not true")
	}
	if ps.SeccompProfile == nil || ps.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Error("pod: seccompProfile is not RuntimeDefault")
	}
	if cs.ReadOnlyRootFilesystem == nil || !*cs.ReadOnlyRootFilesystem {
		t.Error("container: readOnlyRootFilesystem is not true")
	}
	if cs.AllowPrivilegeEscalation == nil || *cs.AllowPrivilegeEscalation {
		t.Error("container: allowPrivilegeEscalation is not false")
	}
	if cs.Capabilities == nil || !slices.Equal(cs.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(cs.Capabilities.Add) > 0 {
		t.Error("container: capabilities must drop ALL and add none")
	}

	// Volumes: every mount has a volume; the config volume is the ConfigMap.
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Spec.Volumes {
		volumes[v.Name] = v
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, vm := range c.VolumeMounts {
		if _, ok := volumes[vm.Name]; !ok {
			t.Errorf("volumeMount %s has no volume", vm.Name)
		}
		mounts[vm.MountPath] = vm
	}
	cfgMount, ok := mounts["/etc/roster/roster.yaml"]
	if !ok || volumes[cfgMount.Name].ConfigMap == nil || volumes[cfgMount.Name].ConfigMap.Name != cm.Name {
		t.Errorf("/etc/roster/roster.yaml is not mounted from the ConfigMap %s", cm.Name)
	}
	if !slices.Equal(append(c.Command, c.Args...), []string{"/usr/local/bin/roster", "serve", "--config", "/etc/roster/roster.yaml"}) {
		t.Errorf("container runs %q, want roster serve --config /etc/roster/roster.yaml", append(c.Command, c.Args...))
	}

	// Environment: every secretKeyRef names the Secret and key that the
	// docs' kubectl create secret makes.
	env := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			ref := e.ValueFrom.SecretKeyRef
			if ref.Name != sec.name || ref.Key != sec.key {
				t.Errorf("env %s: secret %s key %s, but docs/operations.md creates secret %s with key %s", e.Name, ref.Name, ref.Key, sec.name, sec.key)
			}
			env[e.Name] = sec.value
		}
	}

	// The ConfigMap's roster.yaml parses with roster's own config package,
	// with the Secret's placeholder DSN in the environment.
	data, ok := cm.Data["roster.yaml"]
	if !ok {
		t.Fatalf("ConfigMap %s has no roster.yaml", cm.Name)
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	cfg, err := config.Parse([]byte(data), filepath.Join(t.TempDir(), "roster.yaml"))
	if err != nil {
		t.Fatalf("ConfigMap roster.yaml: %v", err)
	}
	if cfg.Store.Driver != config.DriverPostgres {
		t.Errorf("ConfigMap roster.yaml: store.driver %s, want postgres (two replicas share one database)", cfg.Store.Driver)
	}
	if !strings.Contains(data, "${ROSTER_DSN}") || cfg.Store.DSN != env["ROSTER_DSN"] {
		t.Errorf("ConfigMap roster.yaml: store.dsn must be ${ROSTER_DSN} from the Secret")
	}
	if _, ok := mounts[cfg.Log.Dir]; !ok {
		t.Errorf("log.dir %s is not a writable mount (the root filesystem is read-only)", cfg.Log.Dir)
	} else if v := volumes[mounts[cfg.Log.Dir].Name]; v.EmptyDir == nil && v.PersistentVolumeClaim == nil {
		t.Errorf("log.dir %s is not on an emptyDir or a PVC", cfg.Log.Dir)
	}
	for _, l := range []string{cfg.Listen, cfg.MetricsListen} {
		if l == "" {
			continue
		}
		_, port, _ := strings.Cut(l, ":")
		if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return port == strconv.Itoa(int(p.ContainerPort)) }) {
			t.Errorf("roster listens on %s, which is not a container port", l)
		}
		if strings.HasPrefix(l, "127.") || strings.HasPrefix(l, "localhost") {
			t.Errorf("roster listens on %s: probes and the Service cannot reach it", l)
		}
	}
}

// docsSecret is the Secret that docs/operations.md tells operators to
// create: kubectl create secret generic NAME --from-literal=KEY='VALUE'.
type secretDoc struct{ name, key, value string }

func docsSecret(t *testing.T) secretDoc {
	t.Helper()
	docs := string(readFile(t, filepath.Join(repoDir, "docs/operations.md")))
	m := regexp.MustCompile(`kubectl create secret generic (\S+) \\\s+--from-literal=(\w+)='([^']+)'`).FindStringSubmatch(docs)
	if m == nil {
		t.Fatal("docs/operations.md does not say how to create the Secret (kubectl create secret generic NAME --from-literal=KEY='VALUE')")
	}
	return secretDoc{name: m[1], key: m[2], value: m[3]}
}
