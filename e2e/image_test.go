package e2e

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The binary under test is the one `make image` puts into the container: static, built with
// -trimpath, and `lanyard version` prints the version stamped in by the linker.
func TestBinaryIsTheImagesBuild(t *testing.T) {
	out, err := exec.Command(lanyard.binary, "version").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.True(t, strings.HasPrefix(string(out), "lanyard "+e2eVersion+" "), "version output: %s", out)

	info, err := exec.Command("go", "version", "-m", lanyard.binary).CombinedOutput()
	require.NoError(t, err, "%s", info)
	for _, setting := range []string{"build\tCGO_ENABLED=0", "build\t-trimpath=true"} {
		assert.Contains(t, string(info), setting)
	}
}
