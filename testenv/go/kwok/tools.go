//go:build tools

// Package tools pins the KWOK controller testenv builds from its Go module.
package tools

import _ "sigs.k8s.io/kwok/cmd/kwok"
