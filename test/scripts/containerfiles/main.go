// Command containerfiles checks containers/*/Containerfile with BuildKit's own
// Dockerfile frontend (dockerfile2llb), offline: for every component of
// src/contract.json, every StepFlow generation of the contract, both targets (runtime,
// dev), both platforms (linux/amd64, linux/arm64) and, for core, both ways to get the
// server binary (release, source), it takes the build arguments that
// `scripts/build.sh --dry-run --generation G` passes, converts the Containerfile to LLB
// (base images are not pulled: a stub resolver answers), and compares the resulting
// image config with the contract: USER, EXPOSE, ENTRYPOINT, CMD, HEALTHCHECK, ENV of
// the gRPC-pull workers, OCI labels, pinned base image tags, and no BuildKit
// build-check warnings. Output is TAP ("ok N - ..." / "not ok N - ..."), read by
// scripts/lint.sh.
//
// Usage: go run . <repository root>
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerui"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

type component struct {
	Name         string `json:"name"`
	Image        string `json:"image"`
	Port         int    `json:"port"`
	UID          int    `json:"uid"`
	GID          int    `json:"gid"`
	Binary       string `json:"binary"`
	Module       string `json:"module"`
	WorkerModule string `json:"workerModule"`
	Health       struct {
		Liveness string `json:"liveness"`
	} `json:"health"`
}

type contract struct {
	ConfigMap struct {
		Key       string `json:"key"`
		MountPath string `json:"mountPath"`
	} `json:"configMap"`
	Images struct {
		DefaultTag string `json:"defaultTag"`
		DevTag     string `json:"devTag"`
	} `json:"images"`
	Generations map[string]struct {
		ImageTag string `json:"imageTag"`
	} `json:"generations"`
	Paths struct {
		Heartbeat string `json:"heartbeat"`
	} `json:"paths"`
	Env struct {
		HeartbeatFile string `json:"heartbeatFile"`
		Transport     string `json:"transport"`
	} `json:"env"`
	Components map[string]component `json:"components"`
	order      []string
}

// pull tells, per StepFlow generation of the contract, whether its workers pull tasks
// over gRPC (no listener) or serve HTTP (src/types.ts StepFlowGeneration).
var pull = map[string]bool{"0.11": false, "0.13": true}

// stubResolver answers image config lookups without a registry.
type stubResolver struct{ refs *[]string }

func (r stubResolver) ResolveImageConfig(_ context.Context, ref string, opt sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	*r.refs = append(*r.refs, ref)
	arch := "amd64"
	if opt.ImageOpt != nil && opt.ImageOpt.Platform != nil {
		arch = opt.ImageOpt.Platform.Architecture
	}
	cfg, err := json.Marshal(map[string]any{
		"architecture": arch,
		"os":           "linux",
		"config":       map[string]any{"Env": []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}},
		"rootfs":       map[string]any{"type": "layers"},
	})
	return ref, digest.FromBytes(cfg), cfg, err
}

var ociLabels = []string{"title", "description", "version", "source", "revision", "created", "licenses"}

func loadContract(root string) (*contract, error) {
	dt, err := os.ReadFile(filepath.Join(root, "src", "contract.json"))
	if err != nil {
		return nil, err
	}
	var c contract
	if err := json.Unmarshal(dt, &c); err != nil {
		return nil, err
	}
	// component order as in the file
	var raw struct {
		Components json.RawMessage `json:"components"`
	}
	if err := json.Unmarshal(dt, &raw); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(strings.NewReader(string(raw.Components)))
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		switch v := tok.(type) {
		case json.Delim:
			if v == '{' || v == '[' {
				depth++
			} else {
				depth--
			}
		case string:
			if depth == 1 {
				c.order = append(c.order, v)
				var skip json.RawMessage
				if err := dec.Decode(&skip); err != nil {
					return nil, err
				}
			}
		}
	}
	return &c, nil
}

type buildCase struct {
	component, generation, target, arch, source string
}

func (b buildCase) String() string {
	s := fmt.Sprintf("%s %s %s linux/%s", b.component, b.generation, b.target, b.arch)
	if b.source != "" {
		s += " (" + b.source + " binary)"
	}
	return s
}

// dryRun returns the target and build arguments scripts/build.sh passes for a case.
func dryRun(root, checkout string, b buildCase) (string, map[string]string, error) {
	args := []string{filepath.Join(root, "scripts", "build.sh"), b.component, "--dry-run", "--platform", "linux/" + b.arch, "--generation", b.generation}
	if b.target == "dev" {
		args = append(args, "--dev")
	}
	if b.source == "source" {
		args = append(args, "--context", checkout)
	}
	cmd := exec.Command("bash", args...)
	cmd.Env = append(os.Environ(), "STEPFLOW_BUILD_DATE=2026-01-01T00:00:00Z", "STEPFLOW_VCS_REF=0000000")
	out, err := cmd.Output()
	if err != nil {
		return "", nil, fmt.Errorf("build.sh --dry-run: %v", err)
	}
	target := ""
	buildArgs := map[string]string{}
	words := strings.Fields(strings.TrimSpace(string(out)))
	for i := 0; i+1 < len(words); i++ {
		if words[i] != "--opt" {
			continue
		}
		w := strings.Trim(words[i+1], "'")
		switch {
		case strings.HasPrefix(w, "target="):
			target = strings.TrimPrefix(w, "target=")
		case strings.HasPrefix(w, "build-arg:"):
			k, v, _ := strings.Cut(strings.TrimPrefix(w, "build-arg:"), "=")
			buildArgs[k] = v
		}
	}
	return target, buildArgs, nil
}

func check(ctx context.Context, root, checkout string, c *contract, b buildCase) []string {
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }

	comp := c.Components[b.component]
	target, buildArgs, err := dryRun(root, checkout, b)
	if err != nil {
		return []string{err.Error()}
	}
	if target != b.target {
		bad("build.sh passes target %q, want %q", target, b.target)
	}
	dt, err := os.ReadFile(filepath.Join(root, "containers", b.component, "Containerfile"))
	if err != nil {
		return []string{err.Error()}
	}
	var refs, warnings []string
	plat := ocispecs.Platform{OS: "linux", Architecture: b.arch}
	res, err := dockerfile2llb.Dockerfile2LLB(ctx, dt, dockerfile2llb.ConvertOpt{
		MetaResolver:   stubResolver{&refs},
		TargetPlatform: &plat,
		Config: dockerui.Config{
			BuildArgs:       buildArgs,
			Target:          target,
			TargetPlatforms: []ocispecs.Platform{plat},
			BuildPlatforms:  []ocispecs.Platform{{OS: "linux", Architecture: "amd64"}},
		},
		Warn: func(rule, _, _, msg string, loc []parser.Range) {
			line := 0
			if len(loc) > 0 {
				line = loc[0].Start.Line
			}
			warnings = append(warnings, fmt.Sprintf("%s (line %d): %s", rule, line, msg))
		},
	})
	if err != nil {
		return []string{"dockerfile2llb: " + err.Error()}
	}
	if _, err := res.State.Marshal(ctx, llb.Platform(plat)); err != nil {
		bad("LLB marshal: %v", err)
	}
	for _, w := range warnings {
		bad("BuildKit check %s", w)
	}
	img := res.Image.Config
	port := fmt.Sprint(comp.Port)

	if want := fmt.Sprintf("%d:%d", comp.UID, comp.GID); img.User != want {
		bad("USER %q, want %q", img.User, want)
	}
	worker := comp.Binary == ""
	pulls, known := pull[b.generation]
	if !known {
		bad("generation %s: unknown to this checker (add it to the pull map)", b.generation)
	}
	var ports []string
	for p := range img.ExposedPorts {
		ports = append(ports, p)
	}
	sort.Strings(ports)
	wantPorts := []string{port + "/tcp"}
	if worker && pulls {
		wantPorts = nil // a gRPC pull worker listens on nothing
	}
	if !reflect.DeepEqual(ports, wantPorts) {
		bad("EXPOSE %v, want %v", ports, wantPorts)
	}
	var wantEntry, wantCmd []string
	switch {
	case !worker:
		wantEntry = []string{comp.Binary}
		wantCmd = []string{"--port", port, "--config", c.ConfigMap.MountPath + "/" + c.ConfigMap.Key}
	case pulls:
		module := comp.Module
		if comp.WorkerModule != "" {
			module = comp.WorkerModule
		}
		wantEntry = []string{"python3", "-m", module}
	default:
		wantEntry = []string{"python3", "-m", comp.Module}
		wantCmd = []string{"--host", "0.0.0.0", "--port", port}
	}
	if !reflect.DeepEqual([]string(img.Entrypoint), wantEntry) {
		bad("ENTRYPOINT %q, want %q", img.Entrypoint, wantEntry)
	}
	if len(img.Cmd) != 0 || len(wantCmd) != 0 {
		if !reflect.DeepEqual([]string(img.Cmd), wantCmd) {
			bad("CMD %q, want %q", img.Cmd, wantCmd)
		}
	}
	env := map[string]string{}
	for _, e := range img.Env {
		k, v, _ := strings.Cut(e, "=")
		env[k] = v
	}
	if img.Healthcheck == nil || len(img.Healthcheck.Test) < 2 || img.Healthcheck.Test[0] != "CMD" {
		bad("HEALTHCHECK missing or not exec form: %+v", img.Healthcheck)
	} else if test := strings.Join(img.Healthcheck.Test, " "); worker && pulls {
		// The heartbeat file's age, named by the environment the image sets.
		if !strings.Contains(test, c.Env.HeartbeatFile) || !strings.Contains(test, "st_mtime") {
			bad("HEALTHCHECK %q does not check the age of $%s", img.Healthcheck.Test, c.Env.HeartbeatFile)
		}
	} else if url := "http://127.0.0.1:" + port + comp.Health.Liveness; !strings.Contains(test, url) {
		bad("HEALTHCHECK %q does not call %s", img.Healthcheck.Test, url)
	}
	if worker && pulls {
		if got := env[c.Env.HeartbeatFile]; got != c.Paths.Heartbeat {
			bad("ENV %s=%q, want %q", c.Env.HeartbeatFile, got, c.Paths.Heartbeat)
		}
		if got := env[c.Env.Transport]; got != "grpc" {
			bad("ENV %s=%q, want grpc", c.Env.Transport, got)
		}
	} else if _, set := env[c.Env.HeartbeatFile]; set {
		bad("ENV %s set in an image without the worker loop", c.Env.HeartbeatFile)
	}
	for _, l := range ociLabels {
		if img.Labels["org.opencontainers.image."+l] == "" {
			bad("label org.opencontainers.image.%s missing", l)
		}
	}
	if got := img.Labels["org.opencontainers.image.title"]; got != comp.Image {
		bad("label title %q, want %q", got, comp.Image)
	}
	wantVersion := c.Generations[b.generation].ImageTag
	if b.target == "dev" {
		wantVersion += "-" + c.Images.DevTag
	}
	if got := img.Labels["org.opencontainers.image.version"]; got != wantVersion {
		bad("label version %q, want %q", got, wantVersion)
	}
	for _, e := range img.Env {
		if strings.HasPrefix(e, "DEBIAN_FRONTEND=") {
			bad("ENV %s leaks into the image", e)
		}
	}
	if len(refs) == 0 {
		bad("no base image resolved")
	}
	for _, r := range refs {
		name := r[strings.LastIndex(r, "/")+1:]
		if !strings.Contains(name, ":") || strings.Contains(name, ":latest") {
			bad("base image %s is not pinned to a tag", r)
		}
	}
	return problems
}

func main() {
	root := "."
	if len(os.Args) > 1 {
		root = os.Args[1]
	}
	root, _ = filepath.Abs(root)
	c, err := loadContract(root)
	if err != nil {
		fmt.Println("not ok 1 - read src/contract.json:", err)
		fmt.Println("1..1")
		os.Exit(1)
	}
	// A minimal fake StepFlow checkout, so that build.sh accepts --context for core.
	checkout, err := os.MkdirTemp("", "stepflow-checkout")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(checkout)
	if err := os.MkdirAll(filepath.Join(checkout, "stepflow-rs"), 0o755); err != nil {
		panic(err)
	}
	if err := os.WriteFile(filepath.Join(checkout, "stepflow-rs", "Cargo.toml"), nil, 0o644); err != nil {
		panic(err)
	}

	var generations []string
	for g := range c.Generations {
		generations = append(generations, g)
	}
	sort.Strings(generations)

	ctx := context.Background()
	n, failed := 0, 0
	for _, name := range c.order {
		sources := []string{""}
		if c.Components[name].Binary != "" {
			sources = []string{"release", "source"}
		}
		for _, generation := range generations {
			for _, target := range []string{"runtime", "dev"} {
				for _, arch := range []string{"amd64", "arm64"} {
					for _, source := range sources {
						b := buildCase{name, generation, target, arch, source}
						n++
						if problems := check(ctx, root, checkout, c, b); len(problems) > 0 {
							failed++
							fmt.Printf("not ok %d - %s\n", n, b)
							for _, p := range problems {
								fmt.Printf("#   %s\n", p)
							}
						} else {
							fmt.Printf("ok %d - %s\n", n, b)
						}
					}
				}
			}
		}
	}
	fmt.Printf("1..%d\n", n)
	if failed > 0 {
		os.Exit(1)
	}
}
