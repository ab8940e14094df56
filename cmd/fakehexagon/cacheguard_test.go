package main

import (
	"os"
	"testing"

	"github.com/hexprox/hexprox/internal/cacheguard"
)

// Every proxy, handler and demo these tests start keeps its usage rows in
// a directory of its own, never in the user's cache: cacheguard fails the
// run otherwise.
func TestMain(m *testing.M) { os.Exit(cacheguard.Run(m)) }
