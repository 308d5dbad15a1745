package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestKwokctlConfigAddsToTheSharedFile checks that the bench's configuration is the repository's
// shared one with the bench's flags added: the shared flags survive (etcd's among them), the
// kube-apiserver patch is extended rather than repeated, and kwok gets the requested pod workers.
func TestKwokctlConfigAddsToTheSharedFile(t *testing.T) {
	base, err := os.ReadFile(filepath.Join("..", "..", kwokctlBase))
	if err != nil {
		t.Fatal(err)
	}
	out, err := kwokctlConfig(base, 12)
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(out), "\n---\n")
	if len(docs) != 2 {
		t.Fatalf("want a KwokctlConfiguration and a KwokConfiguration, got %d documents:\n%s", len(docs), out)
	}
	var kwokctl struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Options    struct {
			BindAddress string `json:"bindAddress"`
			Runtime     string `json:"runtime"`
		} `json:"options"`
		ComponentsPatches []struct {
			Name      string                        `json:"name"`
			ExtraArgs []struct{ Key, Value string } `json:"extraArgs"`
		} `json:"componentsPatches"`
	}
	if err := yaml.UnmarshalStrict([]byte(docs[0]), &kwokctl); err != nil {
		t.Fatal(err)
	}
	if kwokctl.Kind != "KwokctlConfiguration" || kwokctl.Options.BindAddress != "127.0.0.1" || kwokctl.Options.Runtime != "binary" {
		t.Errorf("the shared options are lost: %+v", kwokctl)
	}
	got := map[string][]string{}
	for _, p := range kwokctl.ComponentsPatches {
		for _, a := range p.ExtraArgs {
			got[p.Name] = append(got[p.Name], a.Key+"="+a.Value)
		}
	}
	if len(kwokctl.ComponentsPatches) != len(got) {
		t.Errorf("want one patch per component, got %+v", kwokctl.ComponentsPatches)
	}
	want := map[string][]string{
		"kube-apiserver": {
			"kubelet-preferred-address-types=InternalIP",
			"enable-admission-plugins=NodeRestriction,OwnerReferencesPermissionEnforcement,AlwaysPullImages,PodSecurity",
			"disable-admission-plugins=TaintNodesByCondition",
		},
		"etcd":           {"unsafe-no-fsync=true"},
		"kube-scheduler": {"kube-api-qps=1000", "kube-api-burst=1000"},
	}
	for comp, args := range want {
		if strings.Join(got[comp], " ") != strings.Join(args, " ") {
			t.Errorf("%s flags: got %v, want %v", comp, got[comp], args)
		}
	}
	if !strings.Contains(docs[1], "kind: KwokConfiguration") || !strings.Contains(docs[1], "podPlayStageParallelism: 12\n") {
		t.Errorf("kwok's configuration lacks the pod workers:\n%s", docs[1])
	}
}
