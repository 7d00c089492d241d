package train

import (
	"errors"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestConfigDefaults(t *testing.T) {
	var c Config
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.QueueSize != DefaultQueueSize || c.queueCap() != DefaultQueueSize || c.Buckets != DefaultBuckets || c.Workers < 1 {
		t.Fatalf("defaults %+v", c)
	}
	c = Config{QueueSize: -1}
	c.SetDefaults()
	if c.queueCap() != 0 || c.Validate() != nil {
		t.Fatal("queue_size -1 should disable the queue")
	}
}

// TestConfigValidateListsEveryProblem: one error names every bad field.
func TestConfigValidateListsEveryProblem(t *testing.T) {
	src := `
buckets: -3
embed_dim: 9000
activation: tanh
char_ngram_min: 4
char_ngram_max: 2
temperature: -1
queue_size: -7
momentum: 1
beta: -1
mask_false_negatives: maybe
embed_optimizer: adam
decay: step
min_lr_ratio: 2
accum_steps: -1
workers: 1000
`
	var c Config
	if err := yaml.Unmarshal([]byte(src), &c); err != nil {
		t.Fatal(err)
	}
	c.SetDefaults()
	err := c.Validate()
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("error %v does not wrap ErrConfig", err)
	}
	for _, field := range []string{"buckets", "embed_dim", "activation", "char_ngram_min", "temperature",
		"queue_size", "momentum", "beta", "mask_false_negatives", "embed_optimizer", "decay", "min_lr_ratio",
		"accum_steps", "workers"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("error does not mention %s: %v", field, err)
		}
	}
	if _, err := NewLearner(c); !errors.Is(err, ErrConfig) {
		t.Fatalf("NewLearner: %v", err)
	}
}
