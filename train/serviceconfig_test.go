package train

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestServiceConfigEval: the evaluation keys load from YAML, take their
// defaults, and every bad one is listed.
func TestServiceConfigEval(t *testing.T) {
	var c ServiceConfig
	src := `
lake: /tmp/lake
eval_tasks: [tasks/a, tasks/b]
eval_every: 500
eval_labels_per_class: [16, all]
promote_tolerance: 0.02
`
	if err := yaml.Unmarshal([]byte(src), &c); err != nil {
		t.Fatal(err)
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	budgets, err := ParseLabelBudgets(c.EvalLabelsPerClass)
	if err != nil || !slices.Equal(budgets, []int{16, 0}) || c.EvalEvery != 500 || c.PromoteTolerance != 0.02 ||
		c.EvalDraws != DefaultEvalDraws || c.EvalMaxExamples != DefaultEvalMaxExamples || len(c.EvalTasks) != 2 {
		t.Fatalf("loaded %+v (budgets %v, %v)", c, budgets, err)
	}
	var d ServiceConfig
	d.SetDefaults()
	if b, _ := ParseLabelBudgets(d.EvalLabelsPerClass); !slices.Equal(b, []int{16, 64}) || d.PromoteTolerance != DefaultPromoteTolerance || d.EvalEvery != DefaultEvalEvery {
		t.Fatalf("defaults %+v", d)
	}

	bad := ServiceConfig{Lake: "x", EvalTasks: []string{" "}, EvalEvery: -1, EvalLabelsPerClass: []string{"16,zero"},
		EvalDraws: -2, EvalMaxExamples: -1, PromoteTolerance: -0.5}
	bad.SetDefaults()
	err = bad.Validate()
	if !errors.Is(err, ErrServiceConfig) {
		t.Fatalf("err %v", err)
	}
	for _, key := range []string{"eval_tasks[0]", "eval_every", "eval_labels_per_class: \"zero\"", "eval_draws", "eval_max_examples", "promote_tolerance"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error does not name %s: %v", key, err)
		}
	}
}
