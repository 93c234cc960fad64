// seccomp-default prints the seccomp profile containerd applies to a container whose pod asks
// for seccompProfile RuntimeDefault (containerd's contrib/seccomp DefaultProfile, the
// containerd version verify/tools pins), for a container with every capability dropped,
// as the "linux.seccomp" object of an OCI runtime configuration (JSON).
//
// verify/images runs the kit's images with runc directly, configured as dist/dev.yaml
// configures them; this is its RuntimeDefault.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/containerd/containerd/v2/contrib/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func main() {
	if len(os.Args) > 1 {
		fmt.Fprintln(os.Stderr, "usage: seccomp-default   (prints containerd's RuntimeDefault profile for a container without capabilities)")
		os.Exit(2)
	}
	spec := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{}}}
	out := json.NewEncoder(os.Stdout)
	out.SetIndent("", "  ")
	if err := out.Encode(seccomp.DefaultProfile(spec)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
