package main

import (
	"os"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestRulesFile turns config/prometheus's PrometheusRule into a rules file with its groups and alerts.
func TestRulesFile(t *testing.T) {
	data, err := os.ReadFile("../../config/prometheus/prometheus_rule.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, err := rulesFile(data)
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name  string
			Rules []struct{ Alert, Expr string }
		}
	}
	if err := yaml.Unmarshal(out, &rules); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if len(rules.Groups) != 1 || len(rules.Groups[0].Rules) < 3 || rules.Groups[0].Rules[0].Alert != "NodeAgentSetRolloutStuck" ||
		rules.Groups[0].Rules[0].Expr == "" {
		t.Errorf("rules file:\n%s", out)
	}

	if _, err := rulesFile([]byte("kind: ServiceMonitor\nspec: {}\n")); err == nil {
		t.Error("a ServiceMonitor was taken for a PrometheusRule")
	}
}
