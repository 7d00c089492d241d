package dedup

import (
	"errors"
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func loadConfig(t *testing.T, path string) Config {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c Config
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConfigDefaults(t *testing.T) {
	c := DefaultConfig()
	want := Config{Punctuation: PunctStrip, ShingleWords: 3, NumPerm: 24, Bands: 12, Rows: 2,
		SketchSize: 128, Threshold: 0.55, MaxCandidates: 64, MaxRecords: 2_000_000, Generations: 4}
	if c != want {
		t.Errorf("defaults %+v, want %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
	for _, tc := range []struct {
		in   Config
		b, r int
	}{
		{Config{NumPerm: 40, Rows: 4}, 10, 4},
		{Config{NumPerm: 40, Bands: 8}, 8, 5},
		{Config{Bands: 10}, 10, 2},
		{Config{Rows: 3}, 12, 3},
	} {
		c := tc.in
		c.SetDefaults()
		if c.Bands != tc.b || c.Rows != tc.r || c.NumPerm != tc.b*tc.r {
			t.Errorf("%+v: got bands %d rows %d num_perm %d, want %d, %d", tc.in, c.Bands, c.Rows, c.NumPerm, tc.b, tc.r)
		}
	}
}

func TestConfigFiles(t *testing.T) {
	good := loadConfig(t, "testdata/config/good.yaml")
	good.SetDefaults()
	if err := good.Validate(); err != nil {
		t.Errorf("good.yaml: %v", err)
	}
	if good.Punctuation != PunctKeep || good.ShingleWords != 4 || good.Seed != 42 || good.Generations != 8 {
		t.Errorf("good.yaml read as %+v", good)
	}
	if _, err := NewIndex(good); err != nil {
		t.Errorf("NewIndex(good.yaml): %v", err)
	}

	bad := loadConfig(t, "testdata/config/bad.yaml")
	bad.SetDefaults()
	err := bad.Validate()
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("bad.yaml: got %v, want ErrConfig", err)
	}
	for _, want := range []string{"shingle_words: 40", "bands: -1", "rows: -2", "num_perm: 7", "sketch_size: 100000",
		"threshold: 1.5", "max_candidates: -3", "generations: 99"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("bad.yaml: error does not mention %q:\n%v", want, err)
		}
	}
	if _, err := NewIndex(bad); !errors.Is(err, ErrConfig) {
		t.Errorf("NewIndex(bad.yaml): %v", err)
	}
	t.Logf("%v", err)

	var c Config
	if err := yaml.Unmarshal([]byte("punctuation: shout"), &c); err == nil || !strings.Contains(err.Error(), "strip or keep") {
		t.Errorf("unknown punctuation policy: %v", err)
	}
}

func TestConfigValidateEach(t *testing.T) {
	for _, tc := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.Punctuation = 7 }, "punctuation"},
		{func(c *Config) { c.NumPerm = 25 }, "num_perm: 25 must equal bands*rows"},
		{func(c *Config) { c.Threshold = -0.1 }, "threshold"},
		{func(c *Config) { c.MaxRecords = 2000 }, "fewer than 1024 records per generation"},
		{func(c *Config) { c.MaxRecords = 0 }, "max_records: 0"},
		{func(c *Config) { c.MaxRecords = -1 }, ""},
	} {
		c := DefaultConfig()
		tc.mod(&c)
		err := c.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", c, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: got %v, want an error about %q", c, err, tc.want)
		}
	}
}
