package imagehost

import (
	"errors"
	"fmt"
	"strings"
)

// Pattern is a registry as written in a RegistryAttachment: "host[:port]" or
// "*.rest[:port]" where "*" stands for exactly ONE DNS label (as the kubelet
// credential-provider matchImages does: "*.azurecr.io" matches
// "myacr.azurecr.io" but not "azurecr.io" nor "a.b.azurecr.io").
//
// The zero Pattern matches nothing.
type Pattern struct {
	glob bool   // a leading "*." stands for one DNS label
	name string // canonical host name after any "*.", without port
	port string // "" when the pattern names no port
	text string // canonical form, returned by String
}

// ParsePattern validates a registry pattern. Hosts are case-insensitive and
// Docker Hub aliases fold to "docker.io", as in Host.
func ParsePattern(registry string) (Pattern, error) {
	if registry == "" {
		return Pattern{}, errors.New("invalid registry pattern: empty")
	}
	fail := func(reason string) (Pattern, error) {
		return Pattern{}, fmt.Errorf("invalid registry pattern %q: %s", registry, reason)
	}
	if hasSpaceOrControl(registry) {
		return fail("must not contain whitespace or control characters")
	}
	if strings.Contains(registry, "://") {
		return fail("must not contain a scheme")
	}
	if strings.Contains(registry, "/") {
		return fail("must not contain a path")
	}
	if strings.Contains(registry, "@") {
		return fail("must not contain a tag or digest")
	}

	rest, glob := strings.CutPrefix(registry, "*.")
	if strings.Contains(rest, "*") {
		return fail("glob only allowed as the whole leading label")
	}
	if glob && strings.HasPrefix(rest, "[") {
		return fail("glob must be followed by a DNS name, not an IP literal")
	}
	if err := checkHost(rest); err != nil {
		return fail(err.Error())
	}

	// Docker Hub aliases fold only as whole hosts; under a glob they are
	// ordinary domains ("*.index.docker.io" is not "*.docker.io").
	host, text := canonicalHost(rest), ""
	if glob {
		host = strings.ToLower(rest)
		text = "*." + host
	} else {
		text = host
	}
	name, port := splitHostPort(host)
	return Pattern{glob: glob, name: name, port: port, text: text}, nil
}

// MustParsePattern is ParsePattern for constants and tests; it panics on an
// invalid pattern.
func MustParsePattern(registry string) Pattern {
	p, err := ParsePattern(registry)
	if err != nil {
		panic(err)
	}
	return p
}

// Matches reports whether host (as returned by Host) is served by the
// pattern: hosts compare case-insensitively; ports must match exactly (no
// port is not ":443"); a glob stands for exactly one label.
func (p Pattern) Matches(host string) bool {
	if p.name == "" {
		return false
	}
	name, port := splitHostPort(host)
	if port != p.port {
		return false
	}
	for _, alias := range dockerHubAliases {
		if equalFoldASCII(name, alias) {
			name = DockerHub
		}
	}
	if !p.glob {
		return equalFoldASCII(name, p.name)
	}
	label, ok := cutLabelSuffix(name, p.name)
	return ok && isDNSLabel(label)
}

// String returns the pattern in canonical form: lower-case, Docker Hub
// aliases folded.
func (p Pattern) String() string {
	return p.text
}

// cutLabelSuffix cuts "."+suffix (ASCII case-insensitively) off name without
// building the dotted suffix.
func cutLabelSuffix(name, suffix string) (string, bool) {
	cut := len(name) - len(suffix) - 1
	if cut < 0 || name[cut] != '.' || !equalFoldASCII(name[cut+1:], suffix) {
		return name, false
	}
	return name[:cut], true
}

// equalFoldASCII folds only ASCII letters: strings.EqualFold would also fold
// look-alikes such as the Kelvin sign into "k", letting a non-ASCII host match
// an ASCII pattern.
func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lowerASCII(a[i]) != lowerASCII(b[i]) {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}
