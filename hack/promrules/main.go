// Command promrules prints the rule groups of a PrometheusRule (the Prometheus Operator's object) as a
// plain Prometheus rules file, for `promtool test rules` (`make test-alerts`):
//
//	go run ./hack/promrules config/prometheus/prometheus_rule.yaml > rules.yaml
package main

import (
	"errors"
	"fmt"
	"os"

	"sigs.k8s.io/yaml"
)

// prometheusRule is the part of a PrometheusRule that a rules file holds.
type prometheusRule struct {
	Kind string `json:"kind"`
	Spec struct {
		Groups []any `json:"groups"`
	} `json:"spec"`
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "promrules:", err)
		os.Exit(1)
	}
}

// run reads one PrometheusRule and writes its groups to standard output.
func run(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: promrules PROMETHEUS_RULE.yaml")
	}
	data, err := os.ReadFile(args[0])
	if err != nil {
		return err
	}
	var rule prometheusRule
	// Only kind and spec.groups are read: the rest of the object is not a rules file's concern.
	if err := yaml.Unmarshal(data, &rule); err != nil {
		return fmt.Errorf("%s: %w", args[0], err)
	}
	if rule.Kind != "PrometheusRule" || len(rule.Spec.Groups) == 0 {
		return fmt.Errorf("%s: not a PrometheusRule with rule groups", args[0])
	}
	out, err := yaml.Marshal(map[string]any{"groups": rule.Spec.Groups})
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(out)
	return err
}
