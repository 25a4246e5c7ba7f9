package imagehost

import (
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testDigest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

func TestHost(t *testing.T) {
	tests := map[string]struct {
		image string
		want  string
	}{
		"bare library image is on docker.io":            {image: "nginx", want: "docker.io"},
		"tagged library image is on docker.io":          {image: "nginx:1.25", want: "docker.io"},
		"digest-pinned library image is on docker.io":   {image: "nginx@" + testDigest, want: "docker.io"},
		"tag and digest library image is on docker.io":  {image: "nginx:1.25@" + testDigest, want: "docker.io"},
		"explicit library namespace is on docker.io":    {image: "library/nginx", want: "docker.io"},
		"user namespace without dot is on docker.io":    {image: "bitnami/redis:7.2", want: "docker.io"},
		"deep path without host is on docker.io":        {image: "org/team/app:v1", want: "docker.io"},
		"explicit docker.io host":                       {image: "docker.io/library/nginx", want: "docker.io"},
		"index.docker.io normalises to docker.io":       {image: "index.docker.io/library/nginx:1", want: "docker.io"},
		"registry-1.docker.io normalises to docker.io":  {image: "registry-1.docker.io/bitnami/redis", want: "docker.io"},
		"upper-case docker hub alias normalises":        {image: "INDEX.Docker.IO/library/nginx", want: "docker.io"},
		"docker hub alias keeps its port":               {image: "index.docker.io:443/library/nginx", want: "docker.io:443"},
		"dotted first segment is a host":                {image: "gcr.io/project/app:v1", want: "gcr.io"},
		"digest never part of host":                     {image: "quay.io/org/app@" + testDigest, want: "quay.io"},
		"tag and digest after host":                     {image: "quay.io/org/app:v2@" + testDigest, want: "quay.io"},
		"port makes dotless segment a host":             {image: "myregistry:5000/x:tag", want: "myregistry:5000"},
		"dotted host with port":                         {image: "registry.example.com:8443/team/app", want: "registry.example.com:8443"},
		"highest port":                                  {image: "registry.example.com:65535/app", want: "registry.example.com:65535"},
		"localhost is a host":                           {image: "localhost/app", want: "localhost"},
		"localhost with port":                           {image: "localhost:5000/x", want: "localhost:5000"},
		"localhost compares case-insensitively":         {image: "LocalHost/app", want: "localhost"},
		"localhost without slash is a docker.io repo":   {image: "localhost", want: "docker.io"},
		"host:port without slash is repo and tag":       {image: "localhost:5000", want: "docker.io"},
		"dotted name without slash is a docker.io repo": {image: "gcr.io", want: "docker.io"},
		"IPv6 literal with port":                        {image: "[::1]:5000/img", want: "[::1]:5000"},
		"IPv6 literal without port":                     {image: "[::1]/img:v1", want: "[::1]"},
		"IPv6 literal is lower-cased":                   {image: "[FE80::1]:443/img", want: "[fe80::1]:443"},
		"IPv4 address with port":                        {image: "10.0.0.1:5000/app", want: "10.0.0.1:5000"},
		"upper-case host is lower-cased":                {image: "MyRegistry.Example.COM/App:V1", want: "myregistry.example.com"},
		"upper-case path is not rejected":               {image: "Library/Nginx:Latest", want: "docker.io"},
		"deep path after host":                          {image: "registry.example.com/a/b/c/d:tag", want: "registry.example.com"},
		"ECR host":                                      {image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:v1", want: "123456789012.dkr.ecr.us-east-1.amazonaws.com"},
		"Artifact Registry host":                        {image: "us-west1-docker.pkg.dev/project/repo/app@" + testDigest, want: "us-west1-docker.pkg.dev"},
		"tag with dots underscores and dashes":          {image: "app:v1.2.3_rc-1", want: "docker.io"},
		"path separators in repository names":           {image: "gcr.io/my_project/my-app.web", want: "gcr.io"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := Host(tc.image)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestHostErrors(t *testing.T) {
	tests := map[string]struct {
		image   string
		wantErr string
	}{
		"empty reference":                     {image: "", wantErr: "empty"},
		"leading space":                       {image: " nginx", wantErr: "whitespace or control"},
		"trailing tab":                        {image: "nginx\t", wantErr: "whitespace or control"},
		"embedded newline":                    {image: "gcr.io/x\n/y", wantErr: "whitespace or control"},
		"NUL byte":                            {image: "nginx\x00", wantErr: "whitespace or control"},
		"DEL byte":                            {image: "nginx\x7f", wantErr: "whitespace or control"},
		"non-breaking space":                  {image: "gcr.io/app\u00a0", wantErr: "whitespace or control"},
		"zero-width space":                    {image: "gcr.io\u200b/app", wantErr: "whitespace or control"},
		"invalid UTF-8":                       {image: "gcr.io/\xff", wantErr: "whitespace or control"},
		"leading slash means empty host":      {image: "/x", wantErr: "empty registry host"},
		"empty port":                          {image: "host:/x", wantErr: "invalid port: empty"},
		"non-numeric port":                    {image: "host:abc/x", wantErr: `invalid port "abc"`},
		"port above 65535":                    {image: "host:65536/x", wantErr: "larger than 65535"},
		"port zero":                           {image: "host:0/x", wantErr: `invalid port "0"`},
		"port with leading zero":              {image: "host:05000/x", wantErr: `invalid port "05000"`},
		"overlong port":                       {image: "host:000005000/x", wantErr: "invalid port"},
		"two ports":                           {image: "gcr.io:443:1/x", wantErr: `invalid port "443:1"`},
		"trailing slash after host":           {image: "gcr.io/", wantErr: `must not end with "/"`},
		"trailing slash without host":         {image: "nginx/", wantErr: `must not end with "/"`},
		"trailing slash before digest":        {image: "gcr.io/x/@" + testDigest, wantErr: `must not end with "/"`},
		"empty path component":                {image: "gcr.io//x", wantErr: "empty path component"},
		"empty tag":                           {image: "nginx:", wantErr: "empty tag"},
		"tag with colon":                      {image: "nginx:1:2", wantErr: `invalid character ':' in tag`},
		"tag starting with dot":               {image: "nginx:.x", wantErr: "tag must start"},
		"tag too long":                        {image: "nginx:" + strings.Repeat("a", 129), wantErr: "longer than 128"},
		"tag in middle component":             {image: "gcr.io/x:tag/y", wantErr: `invalid character ':' in repository path`},
		"missing name before tag":             {image: "gcr.io/:tag", wantErr: "empty path component"},
		"empty digest":                        {image: "nginx@", wantErr: "digest must be"},
		"digest without algorithm separator":  {image: "nginx@sha256", wantErr: "digest must be"},
		"digest with bad encoding":            {image: "nginx@sha256:ab/cd", wantErr: "invalid digest encoding"},
		"digest only":                         {image: "@" + testDigest, wantErr: "missing repository name"},
		"two digests":                         {image: "nginx@" + testDigest + "@" + testDigest, wantErr: "invalid digest encoding"},
		"underscore in host":                  {image: "my_registry.com/x", wantErr: `invalid host label "my_registry"`},
		"host label starting with dash":       {image: "-bad.example.com/x", wantErr: `invalid host label "-bad"`},
		"leading dot in host":                 {image: ".example.com/x", wantErr: `invalid host label ""`},
		"trailing dot in host":                {image: "example.com./x", wantErr: `invalid host label ""`},
		"host label over 63 characters":       {image: strings.Repeat("a", 64) + ".com/x", wantErr: "invalid host label"},
		"unterminated IPv6 literal":           {image: "[::1/x", wantErr: "unterminated IPv6 literal"},
		"garbage after IPv6 literal":          {image: "[::1]x:5/y", wantErr: "after IPv6 literal"},
		"non-hex IPv6 literal":                {image: "[zz::1]:5000/x", wantErr: "invalid IPv6 literal"},
		"IPv4 in brackets":                    {image: "[1.2.3.4]/x", wantErr: "invalid IPv6 literal"},
		"malformed IPv6 literal":              {image: "[1:2:3]/x", wantErr: "invalid IPv6 literal"},
		"empty IPv6 literal":                  {image: "[]:5000/x", wantErr: "invalid IPv6 literal"},
		"punctuation in repository path":      {image: "library/ngi!nx", wantErr: `invalid character '!'`},
		"bracket in path without host colon":  {image: "[abc]/x", wantErr: `invalid character '['`},
		"scheme is not part of any reference": {image: "https://gcr.io/x", wantErr: "invalid port"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := Host(tc.image)
			require.Error(t, err)
			assert.ErrorContains(t, err, tc.wantErr)
			assert.Empty(t, got)
		})
	}
}

// FuzzImageHost checks that Host never panics on untrusted input and that
// whatever it accepts is a well-formed, self-consistent host.
func FuzzImageHost(f *testing.F) {
	seeds := []string{
		"nginx", "nginx:1.25", "nginx@" + testDigest, "nginx:1.25@" + testDigest,
		"library/nginx", "docker.io/library/nginx", "index.docker.io/x", "registry-1.docker.io:443/x",
		"gcr.io/p/app:v1", "myregistry:5000/x:tag", "localhost/x", "LocalHost:5000/x", "localhost",
		"[::1]:5000/img", "[FE80::1]/img", "[::1/x", "[]/x", "[1.2.3.4]/x",
		"MyRegistry.Example.COM/App:V1", "123456789012.dkr.ecr.us-east-1.amazonaws.com/app",
		"myacr.azurecr.io/x", "us-west1-docker.pkg.dev/p/r/i",
		"", "/x", "host:/x", "host:abc/x", "host:65536/x", "host:0/x", "gcr.io/", "gcr.io//x",
		"nginx:", "nginx@", "@sha256:abc", " nginx", "gcr.io/x\n", "gcr.io/\xff", "a\u00a0/b",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	anyGlob := MustParsePattern("*.azurecr.io")
	f.Fuzz(func(t *testing.T, image string) {
		// Arbitrary strings must be safe for every entry point, not only Host's results.
		CloudRegistry(image)
		anyGlob.Matches(image)
		if p, err := ParsePattern(image); err == nil {
			assertPatternSelfConsistent(t, p)
		}

		host, err := Host(image)
		if err != nil {
			assert.Empty(t, host)
			assert.NotEmpty(t, err.Error())
			return
		}
		require.NotEmpty(t, host)
		assert.Equal(t, strings.ToLower(host), host, "host must be lower-case")
		assert.False(t, strings.ContainsAny(host, "/@"), "host %q contains / or @", host)
		assert.False(t, strings.ContainsFunc(host, unicode.IsSpace), "host %q contains whitespace", host)

		// The host is decided by the first segment alone: either that
		// segment (canonicalised) or Docker Hub.
		first, _, hasSlash := strings.Cut(image, "/")
		if hasSlash && (strings.ContainsAny(first, ".:") || strings.EqualFold(first, "localhost")) {
			assert.Equal(t, canonicalHost(first), host)
			if !strings.HasPrefix(host, DockerHub) {
				assert.Equal(t, strings.ToLower(first), host)
			}
		} else {
			assert.Equal(t, DockerHub, host)
		}

		// A result always qualifies as a host when put back in front of a
		// path, so Host is a fixed point on it. (Host(host) alone would be a
		// Docker Hub repository, which is why the "/x" is needed.)
		again, err := Host(host + "/x")
		require.NoError(t, err)
		assert.Equal(t, host, again)

		// Every host is also a valid exact pattern that matches it.
		p, err := ParsePattern(host)
		require.NoError(t, err)
		assert.Equal(t, host, p.String())
		assert.True(t, p.Matches(host))
		CloudRegistry(host)
	})
}

func assertPatternSelfConsistent(t *testing.T, p Pattern) {
	t.Helper()
	text := p.String()
	require.Equal(t, strings.ToLower(text), text, "pattern must be canonical lower-case")
	if rest, glob := strings.CutPrefix(text, "*."); glob {
		assert.True(t, p.Matches("x."+rest), "glob %q must match one label", text)
		assert.False(t, p.Matches(rest), "glob %q must not match zero labels", text)
		assert.False(t, p.Matches("x.y."+rest), "glob %q must not match two labels", text)
		return
	}
	assert.True(t, p.Matches(text), "pattern %q must match itself", text)
	assert.True(t, p.Matches(strings.ToUpper(text)), "pattern %q must match case-insensitively", text)
}

func BenchmarkHost(b *testing.B) {
	images := map[string]string{
		"library":   "nginx:1.25",
		"dockerhub": "docker.io/library/nginx:1.25",
		"gcr":       "gcr.io/project/app@" + testDigest,
		"port":      "registry.example.com:5000/team/app:v1",
		"ecr":       "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:v1",
		"uppercase": "MyRegistry.Example.com/team/app:v1",
	}
	for name, image := range images {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Host(image); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
