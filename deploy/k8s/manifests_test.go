package k8s

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/telechaos/telechaos/scenarios"
)

// kustomization is the subset of kustomize's Kustomization these manifests
// use; decoding strictly into it rejects a misspelt or unsupported field.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace,omitempty"`
	Resources  []string `json:"resources,omitempty"`
	Labels     []struct {
		Pairs            map[string]string `json:"pairs"`
		IncludeSelectors bool              `json:"includeSelectors"`
	} `json:"labels,omitempty"`
	Patches []struct {
		Path string `json:"path"`
	} `json:"patches,omitempty"`
	Images []struct {
		Name    string `json:"name"`
		NewName string `json:"newName,omitempty"`
		NewTag  string `json:"newTag,omitempty"`
	} `json:"images,omitempty"`
}

// object is one decoded manifest.
type object struct {
	file string
	kind string
	name string
	obj  any
}

// decode reads every document of a manifest file strictly into its kind's type.
func decode(t *testing.T, path string) []object {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []object
	for i, doc := range bytes.Split(b, []byte("\n---")) {
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Errorf("%s doc %d: %v", path, i, err)
			continue
		}
		var obj any
		switch tm.APIVersion + " " + tm.Kind {
		case "batch/v1 Job":
			obj = &batchv1.Job{}
		case "v1 ConfigMap":
			obj = &corev1.ConfigMap{}
		case "v1 PersistentVolumeClaim":
			obj = &corev1.PersistentVolumeClaim{}
		case "kustomize.config.k8s.io/v1beta1 Kustomization":
			obj = &kustomization{}
		default:
			t.Errorf("%s doc %d: unexpected apiVersion/kind %q %q (add it to the test)", path, i, tm.APIVersion, tm.Kind)
			continue
		}
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			t.Errorf("%s doc %d (%s): strict decoding: %v", path, i, tm.Kind, err)
			continue
		}
		name := ""
		if m, ok := obj.(metav1.Object); ok {
			name = m.GetName()
			if name == "" {
				t.Errorf("%s doc %d: %s without metadata.name", path, i, tm.Kind)
			}
		}
		out = append(out, object{file: path, kind: tm.Kind, name: name, obj: obj})
	}
	return out
}

// TestManifestsDecodeStrictly decodes every YAML file under deploy/k8s.
func TestManifestsDecodeStrictly(t *testing.T) {
	n := 0
	err := filepath.WalkDir(".", func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || (filepath.Ext(p) != ".yaml" && filepath.Ext(p) != ".yml") {
			return err
		}
		n += len(decode(t, p))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 9 {
		t.Errorf("decoded only %d manifests", n)
	}
}

// build collects a kustomization's objects (resources recursively, then its
// own patches last) without applying the patches: enough to check the
// fields the shard count must agree on.
func build(t *testing.T, dir string) (objs, patches []object) {
	t.Helper()
	ks := decode(t, filepath.Join(dir, "kustomization.yaml"))
	if len(ks) != 1 || ks[0].kind != "Kustomization" {
		t.Fatalf("%s: want one Kustomization", dir)
	}
	k := ks[0].obj.(*kustomization)
	if len(k.Resources) == 0 {
		t.Errorf("%s: no resources", dir)
	}
	for _, r := range k.Resources {
		p := filepath.Join(dir, r)
		st, err := os.Stat(p)
		if err != nil {
			t.Errorf("%s: resource %s: %v", dir, r, err)
			continue
		}
		if st.IsDir() {
			o, pt := build(t, p)
			objs = append(objs, o...)
			patches = append(patches, pt...)
			continue
		}
		objs = append(objs, decode(t, p)...)
	}
	for _, p := range k.Patches {
		path := filepath.Join(dir, p.Path)
		if _, err := os.Stat(path); err != nil {
			t.Errorf("%s: patch %s: %v", dir, p.Path, err)
			continue
		}
		for _, o := range decode(t, path) {
			if !slices.ContainsFunc(objs, func(x object) bool { return x.kind == o.kind && x.name == o.name }) {
				t.Errorf("%s: patch %s targets %s %s, which no resource defines", dir, p.Path, o.kind, o.name)
			}
			patches = append(patches, o)
		}
	}
	return objs, patches
}

// effective finds the last (patched) value of a Job's field among objs then patches.
func effective[T any](objs, patches []object, name string, get func(*batchv1.Job) (T, bool)) (T, bool) {
	var v T
	found := false
	for _, o := range slices.Concat(objs, patches) {
		if j, ok := o.obj.(*batchv1.Job); ok && o.name == name {
			if x, ok := get(j); ok {
				v, found = x, true
			}
		}
	}
	return v, found
}

func env(j *batchv1.Job, name string) (string, bool) {
	for _, c := range j.Spec.Template.Spec.Containers {
		for _, e := range c.Env {
			if e.Name == name {
				return e.Value, true
			}
		}
	}
	return "", false
}

// TestKustomizationsAgreeOnShards checks every kustomization: its resources
// and patches exist, completions = parallelism = SHARDS, the merge Job lists
// exactly shard-0..N-1, and the scenario ConfigMap loads.
func TestKustomizationsAgreeOnShards(t *testing.T) {
	dirs := []string{"base", "overlays/launch-20"}
	for _, dir := range dirs {
		t.Run(dir, func(t *testing.T) {
			objs, patches := build(t, dir)
			completions, ok1 := effective(objs, patches, "telechaos-shards", func(j *batchv1.Job) (int32, bool) {
				if j.Spec.Completions == nil {
					return 0, false
				}
				return *j.Spec.Completions, true
			})
			parallelism, ok2 := effective(objs, patches, "telechaos-shards", func(j *batchv1.Job) (int32, bool) {
				if j.Spec.Parallelism == nil {
					return 0, false
				}
				return *j.Spec.Parallelism, true
			})
			shards, ok3 := effective(objs, patches, "telechaos-shards", func(j *batchv1.Job) (string, bool) { return env(j, "SHARDS") })
			if !ok1 || !ok2 || !ok3 {
				t.Fatalf("telechaos-shards: completions, parallelism or SHARDS missing")
			}
			if completions != parallelism || fmt.Sprint(completions) != shards {
				t.Errorf("completions %d, parallelism %d, SHARDS %s: must be equal", completions, parallelism, shards)
			}
			base, _ := effective(objs, nil, "telechaos-shards", func(j *batchv1.Job) (*batchv1.Job, bool) { return j, true })
			if base == nil || base.Spec.CompletionMode == nil || *base.Spec.CompletionMode != batchv1.IndexedCompletion {
				t.Errorf("telechaos-shards must be an Indexed Job")
			}
			if base != nil {
				a := base.Spec.Template.Annotations
				if a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] == "" {
					t.Errorf("shard pods lack Prometheus scrape annotations: %v", a)
				}
				args := strings.Join(base.Spec.Template.Spec.Containers[0].Args, " ")
				for _, want := range []string{"--shards=$(SHARDS)", "--run-id=$(RUN_ID)", "--target=$(TARGET_URL)", "--report=/reports"} {
					if !strings.Contains(args, want) {
						t.Errorf("shard args %q lack %s", args, want)
					}
				}
			}
			args, ok := effective(objs, patches, "telechaos-merge", func(j *batchv1.Job) ([]string, bool) {
				a := j.Spec.Template.Spec.Containers[0].Args
				return a, len(a) > 0
			})
			if !ok {
				t.Fatalf("no telechaos-merge Job")
			}
			var want []string
			for i := range int(completions) {
				want = append(want, fmt.Sprintf("/reports/$(RUN_ID)/shard-%d", i))
			}
			want = append(append([]string{"report", "merge"}, want...), "--report", "/reports/$(RUN_ID)/merged")
			if !slices.Equal(args, want) {
				t.Errorf("merge args %q, want %q", args, want)
			}
			for _, id := range []string{"telechaos-shards", "telechaos-merge"} {
				if r, _ := effective(objs, patches, id, func(j *batchv1.Job) (string, bool) { return env(j, "RUN_ID") }); r == "" {
					t.Errorf("%s: no RUN_ID", id)
				}
			}
			// The scenario (the patched one if any) must load and leave every
			// shard patients and several per clinician.
			var data string
			for _, o := range slices.Concat(objs, patches) {
				if cm, ok := o.obj.(*corev1.ConfigMap); ok && o.name == "telechaos-scenario" {
					data = cm.Data["scenario.yaml"]
				}
			}
			p := filepath.Join(t.TempDir(), "scenario.yaml")
			if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
			sc, err := scenarios.Load(p)
			if err != nil {
				t.Fatalf("scenario ConfigMap: %v", err)
			}
			if err := sc.Validate(); err != nil {
				t.Errorf("scenario ConfigMap: %v", err)
			}
			c := max(sc.Population.Clinicians, 1)
			l := lcm(int(completions), c)
			if sc.Population.Patients < 2*l {
				t.Errorf("patients %d < 2*lcm(%d shards, %d clinicians) = %d: a shard's clinician would serve one patient", sc.Population.Patients, completions, c, 2*l)
			}
		})
	}
}

func lcm(a, b int) int {
	g, x := a, b
	for x != 0 {
		g, x = x, g%x
	}
	return a / g * b
}
