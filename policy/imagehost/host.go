// Package imagehost owns the question "which registry does this image pull
// from, and which configured registries and managed clouds serve it?".
//
// It extracts the registry host from container image references the way the
// kubelet and the docker reference grammar do, parses and matches the registry
// patterns written in a RegistryAttachment, and classifies hosts of the
// managed cloud registries. Everything here is a pure function over strings:
// the inputs come from untrusted pod specs, so nothing panics and the common
// paths do not allocate.
package imagehost

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// DockerHub is the host that references without a registry host pull from,
// and the canonical spelling of Docker Hub's aliases.
const DockerHub = "docker.io"

// dockerHubAliases are other names of Docker Hub that clients and older
// configs use; they are folded into DockerHub so patterns and hosts agree.
var dockerHubAliases = [...]string{"index.docker.io", "registry-1.docker.io"}

// Length limits of a DNS label (RFC 1035) and of a tag (docker reference
// grammar).
const (
	maxLabelLen = 63
	maxTagLen   = 128
)

// Host returns the registry host ("host" or "host:port", lower-cased) an
// image reference pulls from, following the kubelet / docker reference rules:
// the first path segment is a host only if it contains "." or ":" or is
// "localhost"; otherwise the image is on "docker.io". Tags and digests are
// never part of the host. "index.docker.io" and "registry-1.docker.io"
// normalise to "docker.io". An empty or syntactically invalid reference
// returns an error saying what is wrong.
func Host(image string) (string, error) {
	if image == "" {
		return "", errors.New("invalid image reference: empty")
	}
	if hasSpaceOrControl(image) {
		return "", invalidReference(image, "contains whitespace or control characters")
	}

	name := image
	if at := strings.IndexByte(image, '@'); at >= 0 {
		name = image[:at]
		if err := checkDigest(image[at+1:]); err != "" {
			return "", invalidReference(image, err)
		}
	}
	if name == "" {
		return "", invalidReference(image, "missing repository name")
	}
	if name[len(name)-1] == '/' {
		return "", invalidReference(image, `must not end with "/"`)
	}

	host, path := "", name
	if slash := strings.IndexByte(name, '/'); slash >= 0 {
		first := name[:slash]
		if first == "" {
			return "", invalidReference(image, "empty registry host")
		}
		if looksLikeHost(first) {
			host, path = first, name[slash+1:]
		}
	}
	// The host is checked first: its error is the more useful one when both
	// are wrong, as in "https://gcr.io/x".
	if host != "" {
		if err := checkHost(host); err != nil {
			return "", invalidReference(image, err.Error())
		}
	}
	if err := checkPath(path); err != "" {
		return "", invalidReference(image, err)
	}
	if host == "" {
		return DockerHub, nil
	}
	return canonicalHost(host), nil
}

func invalidReference(image, reason string) error {
	return fmt.Errorf("invalid image reference %q: %s", image, reason)
}

// looksLikeHost is the docker rule deciding whether the first path segment
// names a registry: "library/nginx" is a Docker Hub repository, while
// "gcr.io/x", "myregistry:5000/x" and "localhost/x" name registries.
func looksLikeHost(segment string) bool {
	return strings.ContainsAny(segment, ".:") || equalFoldASCII(segment, "localhost")
}

// canonicalHost lower-cases a validated host and folds Docker Hub aliases.
// strings.ToLower returns its argument unchanged (no allocation) when the
// host is already lower-case, which is the common case.
func canonicalHost(host string) string {
	host = strings.ToLower(host)
	name, port := splitHostPort(host)
	for _, alias := range dockerHubAliases {
		if name == alias {
			if port == "" {
				return DockerHub
			}
			return DockerHub + ":" + port
		}
	}
	return host
}

// hasSpaceOrControl reports ASCII whitespace and control bytes, and the
// Unicode spaces and controls that would otherwise hide inside a reference.
func hasSpaceOrControl(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c == 0x7f {
			return true
		}
		if c >= 0x80 {
			return hasUnicodeSpaceOrControl(s[i:])
		}
	}
	return false
}

func hasUnicodeSpaceOrControl(s string) bool {
	for _, r := range s {
		// U+FFFD also covers invalid UTF-8, which no registry accepts.
		if r <= ' ' || (r >= 0x7f && r <= 0x9f) || r == 0xa0 || r == 0x1680 ||
			(r >= 0x2000 && r <= 0x200f) || (r >= 0x2028 && r <= 0x202f) ||
			r == 0x205f || r == 0x3000 || r == 0xfeff || r == 0xfffd {
			return true
		}
	}
	return false
}

// checkDigest accepts "algorithm:encoded" loosely; only the structure matters
// here because the digest never decides the host.
func checkDigest(digest string) string {
	algorithm, encoded, ok := strings.Cut(digest, ":")
	if !ok || algorithm == "" || encoded == "" {
		return `digest must be "algorithm:hex"`
	}
	for i := 0; i < len(algorithm); i++ {
		if c := algorithm[i]; !isAlnum(c) && c != '+' && c != '.' && c != '_' && c != '-' {
			return "invalid digest algorithm"
		}
	}
	for i := 0; i < len(encoded); i++ {
		if c := encoded[i]; !isAlnum(c) && c != '=' && c != '_' && c != '-' {
			return "invalid digest encoding"
		}
	}
	return ""
}

// checkPath validates the repository path and optional tag after the host.
// Upper case is allowed on purpose: docker rejects it, but it does not change
// the host, and the kubelet leaves that decision to the runtime.
func checkPath(path string) string {
	if path == "" {
		return "missing repository name"
	}
	last := path
	if slash := strings.LastIndexByte(path, '/'); slash >= 0 {
		last = path[slash+1:]
		for rest := path[:slash]; ; {
			component, tail, more := strings.Cut(rest, "/")
			if err := checkPathComponent(component); err != "" {
				return err
			}
			if !more {
				break
			}
			rest = tail
		}
	}
	component, tag, tagged := strings.Cut(last, ":")
	if err := checkPathComponent(component); err != "" {
		return err
	}
	if tagged {
		return checkTag(tag)
	}
	return ""
}

func checkPathComponent(component string) string {
	if component == "" {
		return "empty path component"
	}
	for i := 0; i < len(component); i++ {
		if c := component[i]; !isAlnum(c) && c != '.' && c != '_' && c != '-' {
			return fmt.Sprintf("invalid character %q in repository path", c)
		}
	}
	return ""
}

func checkTag(tag string) string {
	if tag == "" {
		return "empty tag"
	}
	if len(tag) > maxTagLen {
		return "tag longer than 128 characters"
	}
	if tag[0] == '.' || tag[0] == '-' {
		return "tag must start with a letter, digit or underscore"
	}
	for i := 0; i < len(tag); i++ {
		if c := tag[i]; !isAlnum(c) && c != '.' && c != '_' && c != '-' {
			return fmt.Sprintf("invalid character %q in tag", c)
		}
	}
	return ""
}

// checkHost validates "hostname[:port]" or "[ipv6][:port]". Its errors are
// phrased to fit both image references and registry patterns.
func checkHost(host string) error {
	name, port := host, ""
	if strings.HasPrefix(host, "[") {
		end := strings.IndexByte(host, ']')
		if end < 0 {
			return fmt.Errorf("unterminated IPv6 literal %q", host)
		}
		if err := checkIPv6(host[1:end]); err != nil {
			return err
		}
		rest := host[end+1:]
		if rest != "" {
			if rest[0] != ':' {
				return fmt.Errorf("unexpected %q after IPv6 literal", rest)
			}
			if err := checkPort(rest[1:]); err != nil {
				return err
			}
		}
		return nil
	}
	if colon := strings.IndexByte(host, ':'); colon >= 0 {
		name, port = host[:colon], host[colon+1:]
		if err := checkPort(port); err != nil {
			return err
		}
	}
	return checkHostname(name)
}

func checkIPv6(literal string) error {
	for i := 0; i < len(literal); i++ {
		if c := literal[i]; !isHex(c) && c != ':' {
			return fmt.Errorf("invalid IPv6 literal %q", literal)
		}
	}
	if addr, err := netip.ParseAddr(literal); err != nil || !addr.Is6() {
		return fmt.Errorf("invalid IPv6 literal %q", literal)
	}
	return nil
}

// checkPort requires the canonical decimal spelling (no sign, no leading
// zero, 1–65535) so that each port has exactly one string form to match.
func checkPort(port string) error {
	if port == "" {
		return errors.New("invalid port: empty")
	}
	if len(port) > 5 || port[0] == '0' {
		return fmt.Errorf("invalid port %q", port)
	}
	n := 0
	for i := 0; i < len(port); i++ {
		c := port[i]
		if c < '0' || c > '9' {
			return fmt.Errorf("invalid port %q", port)
		}
		n = n*10 + int(c-'0')
	}
	if n > 65535 {
		return fmt.Errorf("invalid port %q: larger than 65535", port)
	}
	return nil
}

func checkHostname(name string) error {
	if name == "" {
		return errors.New("empty host")
	}
	for rest := name; ; {
		label, tail, more := strings.Cut(rest, ".")
		if !isDNSLabel(label) {
			return fmt.Errorf("invalid host label %q", label)
		}
		if !more {
			return nil
		}
		rest = tail
	}
}

// isDNSLabel reports an RFC 1123 label: 1–63 letters, digits and inner hyphens.
func isDNSLabel(label string) bool {
	if label == "" || len(label) > maxLabelLen || label[0] == '-' || label[len(label)-1] == '-' {
		return false
	}
	for i := 0; i < len(label); i++ {
		if c := label[i]; !isAlnum(c) && c != '-' {
			return false
		}
	}
	return true
}

// splitHostPort splits "name:port" and "[ipv6]:port" without validating;
// port is "" when there is none.
func splitHostPort(host string) (name, port string) {
	if strings.HasPrefix(host, "[") {
		end := strings.IndexByte(host, ']')
		if end < 0 {
			return host, ""
		}
		if rest := host[end+1:]; strings.HasPrefix(rest, ":") {
			return host[:end+1], rest[1:]
		}
		return host, ""
	}
	if colon := strings.IndexByte(host, ':'); colon >= 0 {
		return host[:colon], host[colon+1:]
	}
	return host, ""
}

func isAlnum(c byte) bool {
	return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}
