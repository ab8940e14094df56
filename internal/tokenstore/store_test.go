package tokenstore_test

import (
	"testing"

	"github.com/hexprox/hexprox/internal/tokenstore"
	"github.com/hexprox/hexprox/internal/tokenstore/storetest"
)

func TestMemoryConformance(t *testing.T) {
	storetest.Run(t, tokenstore.NewMemory())
}
