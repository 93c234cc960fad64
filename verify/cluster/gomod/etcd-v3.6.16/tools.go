//go:build tools

// Package tools pins the program that install.sh builds from this module.
package tools

import _ "go.etcd.io/etcd/server/v3"
