//go:build tools

// Package tools records the one command this module exists to build: etcd,
// whose main package is the root of the go.etcd.io/etcd/server/v3 module.
package tools

import _ "go.etcd.io/etcd/server/v3"
