package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// Docker cannot run here, so these tests check compose.yaml and the
// Dockerfile for the mistakes that would only show at "docker compose up":
// names, ports and kafkaListeners that do not line up, a lake not on a volume,
// and an ingest command the real CLI rejects.

const composeRoot = "../.."

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string                      `yaml:"image"`
	Build       composeBuild                `yaml:"build"`
	Entrypoint  []string                    `yaml:"entrypoint"`
	Command     []string                    `yaml:"command"`
	Environment map[string]string           `yaml:"environment"`
	Ports       []string                    `yaml:"ports"`
	Volumes     []string                    `yaml:"volumes"`
	DependsOn   map[string]composeDependsOn `yaml:"depends_on"`
	Restart     string                      `yaml:"restart"`
	Healthcheck struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
}

type composeBuild struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
}

type composeDependsOn struct {
	Condition string `yaml:"condition"`
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(composeRoot, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return c
}

func composeServiceNamed(t *testing.T, c composeFile, name string) composeService {
	t.Helper()
	s, ok := c.Services[name]
	if !ok {
		names := make([]string, 0, len(c.Services))
		for n := range c.Services {
			names = append(names, n)
		}
		sort.Strings(names)
		t.Fatalf("compose.yaml has no service %q (has %v)", name, names)
	}
	return s
}

// argValue returns the value of --name (or -name) in args, in either the
// "--name value" or "--name=value" form.
func argValue(args []string, name string) (string, bool) {
	for i, a := range args {
		for _, p := range []string{"--" + name, "-" + name} {
			if a == p && i+1 < len(args) {
				return args[i+1], true
			}
			if v, ok := strings.CutPrefix(a, p+"="); ok {
				return v, true
			}
		}
	}
	return "", false
}

// kafkaListeners parses "NAME://host:port,..." into name -> host:port.
func kafkaListeners(t *testing.T, s string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, l := range splitList(s) {
		name, hp, ok := strings.Cut(l, "://")
		if !ok {
			t.Fatalf("listener %q: want NAME://host:port", l)
		}
		out[name] = hp
	}
	return out
}

// publishedPorts parses "host:container" port mappings into container -> host.
func publishedPorts(t *testing.T, ports []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, p := range ports {
		p = strings.TrimSuffix(p, "/tcp")
		parts := strings.Split(p, ":")
		switch len(parts) {
		case 1:
			out[parts[0]] = parts[0]
		case 2:
			out[parts[1]] = parts[0]
		case 3: // ip:host:container
			out[parts[2]] = parts[1]
		default:
			t.Fatalf("port mapping %q not understood", p)
		}
	}
	return out
}

func TestComposeKafka(t *testing.T) {
	c := loadCompose(t)
	kafka := composeServiceNamed(t, c, "kafka")
	if !regexp.MustCompile(`^apache/kafka:\d+\.\d+\.\d+$`).MatchString(kafka.Image) {
		t.Errorf("kafka image %q: want apache/kafka pinned to a version", kafka.Image)
	}
	env := kafka.Environment
	if !strings.Contains(env["KAFKA_PROCESS_ROLES"], "controller") || !strings.Contains(env["KAFKA_PROCESS_ROLES"], "broker") {
		t.Errorf("KAFKA_PROCESS_ROLES %q: want KRaft broker,controller", env["KAFKA_PROCESS_ROLES"])
	}
	if id, err := base64.RawURLEncoding.DecodeString(env["CLUSTER_ID"]); err != nil || len(id) != 16 {
		t.Errorf("CLUSTER_ID %q: Kafka wants a base64 UUID (16 bytes)", env["CLUSTER_ID"])
	}
	ls := kafkaListeners(t, env["KAFKA_LISTENERS"])
	adv := kafkaListeners(t, env["KAFKA_ADVERTISED_LISTENERS"])
	protocols := kafkaListeners(t, strings.ReplaceAll(env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"], ":", "://"))
	for name := range ls {
		if _, ok := protocols[name]; !ok {
			t.Errorf("listener %s has no security protocol", name)
		}
	}
	for _, name := range []string{env["KAFKA_INTER_BROKER_LISTENER_NAME"], env["KAFKA_CONTROLLER_LISTENER_NAMES"]} {
		if _, ok := ls[name]; !ok {
			t.Errorf("listener %q is named but not declared in KAFKA_LISTENERS", name)
		}
	}
	voters := env["KAFKA_CONTROLLER_QUORUM_VOTERS"]
	_, ctrlPort, _ := net.SplitHostPort(ls[env["KAFKA_CONTROLLER_LISTENER_NAMES"]])
	if want := env["KAFKA_NODE_ID"] + "@kafka:" + ctrlPort; voters != want {
		t.Errorf("KAFKA_CONTROLLER_QUORUM_VOTERS %q, want %q", voters, want)
	}

	// Each advertised listener is reachable: kafka's own name from other
	// containers, localhost from the host through a publishedPorts port.
	pub := publishedPorts(t, kafka.Ports)
	var internal, host bool
	for name, hp := range adv {
		h, p, err := net.SplitHostPort(hp)
		if err != nil {
			t.Fatalf("advertised listener %s %q: %v", name, hp, err)
		}
		_, lp, _ := net.SplitHostPort(ls[name])
		switch h {
		case "kafka":
			internal = true
			if p != lp {
				t.Errorf("listener %s: advertises port %s, listens on %s", name, p, lp)
			}
		case "localhost", "127.0.0.1":
			host = true
			if pub[lp] != p {
				t.Errorf("listener %s advertises %s but container port %s is published as %q", name, hp, lp, pub[lp])
			}
		default:
			t.Errorf("advertised listener %s %q: host is neither the service name nor localhost", name, hp)
		}
	}
	if !internal || !host {
		t.Errorf("want a listener for containers (kafka:PORT) and one for the host (localhost:PORT): %v", adv)
	}

	hc := strings.Join(kafka.Healthcheck.Test, " ")
	if !strings.Contains(hc, "/opt/kafka/bin/") {
		t.Errorf("kafka healthcheck %q: want one of kafka's own scripts", hc)
	}
}

func TestComposeTopicInit(t *testing.T) {
	c := loadCompose(t)
	ingest := composeServiceNamed(t, c, "thresher-ingest")
	topic, _ := argValue(ingest.Command, "topic")
	kinit := composeServiceNamed(t, c, "kafka-init")
	args := append(append([]string{}, kinit.Entrypoint...), kinit.Command...)
	if got, _ := argValue(args, "topic"); got != topic {
		t.Errorf("kafka-init creates topic %q, ingest reads %q", got, topic)
	}
	if !strings.Contains(strings.Join(args, " "), "--if-not-exists") {
		t.Error("kafka-init must be rerunnable (--if-not-exists)")
	}
	if kinit.DependsOn["kafka"].Condition != "service_healthy" {
		t.Error("kafka-init must wait for kafka to be healthy")
	}
	if ingest.DependsOn["kafka-init"].Condition != "service_completed_successfully" {
		t.Error("thresher-ingest must wait for kafka-init to complete")
	}
}

func TestComposeIngest(t *testing.T) {
	c := loadCompose(t)
	kafka := composeServiceNamed(t, c, "kafka")
	ingest := composeServiceNamed(t, c, "thresher-ingest")
	cmd := ingest.Command
	if len(cmd) == 0 || cmd[0] != "ingest" {
		t.Fatalf("thresher-ingest command %v: want it to start with ingest", cmd)
	}
	if ingest.DependsOn["kafka"].Condition != "service_healthy" {
		t.Errorf("thresher-ingest depends_on kafka %+v: want condition service_healthy", ingest.DependsOn["kafka"])
	}
	if ingest.Restart != "unless-stopped" {
		t.Errorf("restart %q, want unless-stopped", ingest.Restart)
	}

	// --brokers: the kafka composeServiceNamed, on a port it listens and advertises as
	// itself.
	brokers, ok := argValue(cmd, "brokers")
	if !ok {
		t.Fatal("ingest command has no --brokers")
	}
	ls := kafkaListeners(t, kafka.Environment["KAFKA_LISTENERS"])
	adv := kafkaListeners(t, kafka.Environment["KAFKA_ADVERTISED_LISTENERS"])
	for _, b := range splitList(brokers) {
		h, p, err := net.SplitHostPort(b)
		if err != nil {
			t.Fatalf("--brokers %q: %v", b, err)
		}
		if _, isService := c.Services[h]; !isService || h != "kafka" {
			t.Errorf("--brokers host %q is not the kafka service", h)
		}
		matched := false
		for name, hp := range adv {
			_, lp, _ := net.SplitHostPort(ls[name])
			if hp == b && lp == p {
				matched = true
			}
		}
		if !matched {
			t.Errorf("--brokers %s matches no listener kafka declares and advertises (%v, %v)", b, ls, adv)
		}
	}

	// --listen: published.
	listen, ok := argValue(cmd, "listen")
	if !ok {
		t.Fatal("ingest command has no --listen")
	}
	_, lport, err := net.SplitHostPort(listen)
	if err != nil {
		t.Fatalf("--listen %q: %v", listen, err)
	}
	if _, ok := publishedPorts(t, ingest.Ports)[lport]; !ok {
		t.Errorf("--listen port %s is not published (ports %v)", lport, ingest.Ports)
	}

	// --lake: the mount point of a named volume declared at the top level.
	lake, ok := argValue(cmd, "lake")
	if !ok {
		t.Fatal("ingest command has no --lake")
	}
	mounted := false
	for _, v := range ingest.Volumes {
		src, dst, _ := strings.Cut(v, ":")
		dst, _, _ = strings.Cut(dst, ":") // drop :ro / :rw
		if dst != lake {
			continue
		}
		if _, declared := c.Volumes[src]; !declared {
			t.Errorf("volume %q mounted at %s is not a named volume declared under volumes:", src, lake)
		}
		mounted = true
	}
	if !mounted {
		t.Errorf("--lake %s is not the mount point of a volume (%v)", lake, ingest.Volumes)
	}

	// The real CLI accepts the command. This needs "ingest --check", which
	// validates flags and configuration, prints them and exits 0 without
	// connecting.
	var stdout, stderr bytes.Buffer
	if code := Run(context.Background(), append(append([]string{}, cmd...), "--check"), strings.NewReader(""), &stdout, &stderr); code != ExitOK {
		t.Errorf("thresher %s --check: exit %d\nstdout: %s\nstderr: %s", strings.Join(cmd, " "), code, stdout.String(), stderr.String())
	}
}

func TestComposeDockerfile(t *testing.T) {
	c := loadCompose(t)
	ingest := composeServiceNamed(t, c, "thresher-ingest")
	if ingest.Build.Context != "." {
		t.Errorf("thresher-ingest build context %q, want the repository root", ingest.Build.Context)
	}
	name := ingest.Build.Dockerfile
	if name == "" {
		name = "Dockerfile"
	}
	b, err := os.ReadFile(filepath.Join(composeRoot, ingest.Build.Context, name))
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	build := regexp.MustCompile(`(?m)^RUN .*CGO_ENABLED=0 go build .*-o (\S+) (\S+)\s*$`).FindStringSubmatch(df)
	if build == nil {
		t.Fatalf("Dockerfile has no CGO_ENABLED=0 go build -o BIN PKG line")
	}
	if build[2] != "./cmd/thresher" {
		t.Errorf("Dockerfile builds %s, want ./cmd/thresher", build[2])
	}
	if _, err := os.Stat(filepath.Join(composeRoot, build[2], "main.go")); err != nil {
		t.Errorf("the package the Dockerfile builds: %v", err)
	}
	if !regexp.MustCompile(`(?m)^FROM golang:1\.26\S* AS build`).MatchString(df) {
		t.Error("Dockerfile: want a golang:1.26 build stage")
	}
	if want := fmt.Sprintf(`ENTRYPOINT ["%s"]`, build[1]); !strings.Contains(df, want) {
		t.Errorf("Dockerfile: want %s", want)
	}
	// A named volume copies the image's ownership of its mount point: the
	// lake must exist in the image, owned by the user that runs.
	lake, _ := argValue(ingest.Command, "lake")
	if !regexp.MustCompile(`(?m)^COPY --from=build --chown=(\d+):\d+ \S+ ` + regexp.QuoteMeta(lake) + `$`).MatchString(df) {
		t.Errorf("Dockerfile: the runtime image should hold %s owned by its user", lake)
	}

	// .dockerignore keeps what the build needs.
	ig, err := os.ReadFile(filepath.Join(composeRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range strings.Split(string(ig), "\n") {
		p = strings.TrimSpace(p)
		if p == "" || strings.HasPrefix(p, "#") {
			continue
		}
		for _, need := range []string{"go.mod", "go.sum", "cmd/thresher/main.go", "internal/sample/sample.jsonl.gz", "internal/sample/DATA_LICENSES.md"} {
			if m, _ := filepath.Match(strings.TrimPrefix(p, "**/"), need); m || strings.HasPrefix(need, strings.TrimSuffix(p, "/")+"/") {
				t.Errorf(".dockerignore pattern %q excludes %s, which the build needs", p, need)
			}
		}
	}
}

// TestComposeStages: curate and the trainer run from ingest's image on the
// same lake volume, publish the port they listen on, start after the stage
// they follow, and their commands pass the real CLI's --check.
func TestComposeStages(t *testing.T) {
	c := loadCompose(t)
	ingest := composeServiceNamed(t, c, "thresher-ingest")
	ingestLake, _ := argValue(ingest.Command, "lake")
	var lakeVolume string
	for _, v := range ingest.Volumes {
		if src, dst, _ := strings.Cut(v, ":"); dst == ingestLake {
			lakeVolume = src
		}
	}
	for _, tc := range []struct{ service, command, after string }{
		{"thresher-curate", "curate", "thresher-ingest"},
		{"thresher-train", "train", "thresher-curate"},
	} {
		s := composeServiceNamed(t, c, tc.service)
		if len(s.Command) == 0 || s.Command[0] != tc.command {
			t.Errorf("%s command %v: want %s", tc.service, s.Command, tc.command)
			continue
		}
		if s.Image != ingest.Image {
			t.Errorf("%s image %q, want ingest's %q", tc.service, s.Image, ingest.Image)
		}
		if _, ok := s.DependsOn[tc.after]; !ok {
			t.Errorf("%s does not start after %s", tc.service, tc.after)
		}
		lake, _ := argValue(s.Command, "lake")
		if !slices.Contains(s.Volumes, lakeVolume+":"+lake) {
			t.Errorf("%s --lake %s is not the %q volume ingest writes (%v)", tc.service, lake, lakeVolume, s.Volumes)
		}
		listen, _ := argValue(s.Command, "listen")
		_, port, err := net.SplitHostPort(listen)
		if err != nil {
			t.Errorf("%s --listen %q: %v", tc.service, listen, err)
		} else if _, ok := publishedPorts(t, s.Ports)[port]; !ok {
			t.Errorf("%s --listen port %s is not published (%v)", tc.service, port, s.Ports)
		}
		var stdout, stderr bytes.Buffer
		if code := Run(context.Background(), append(append([]string{}, s.Command...), "--check"), strings.NewReader(""), &stdout, &stderr); code != ExitOK {
			t.Errorf("thresher %s --check: exit %d\n%s", strings.Join(s.Command, " "), code, stderr.String())
		}
	}
}
