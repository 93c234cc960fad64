//go:build tools

// Package tools pins the programs verify/tools/install.sh builds from this module.
package tools

import (
	_ "github.com/moby/buildkit/cmd/buildkitd"
	_ "github.com/moby/buildkit/cmd/buildctl"
)
