package imagehost

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParsePattern(t *testing.T) {
	tests := map[string]struct {
		registry string
		want     string
	}{
		"plain host":                         {registry: "gcr.io", want: "gcr.io"},
		"host with port":                     {registry: "registry.example.com:5000", want: "registry.example.com:5000"},
		"upper case is folded":               {registry: "MyReg.Example.COM:5000", want: "myreg.example.com:5000"},
		"glob leading label":                 {registry: "*.azurecr.io", want: "*.azurecr.io"},
		"glob with port":                     {registry: "*.example.com:443", want: "*.example.com:443"},
		"upper-case glob domain is folded":   {registry: "*.AzureCR.IO", want: "*.azurecr.io"},
		"index.docker.io folds to docker.io": {registry: "index.docker.io", want: "docker.io"},
		"registry-1.docker.io folds":         {registry: "Registry-1.Docker.io", want: "docker.io"},
		"localhost":                          {registry: "localhost:5000", want: "localhost:5000"},
		"dotless single label":               {registry: "myregistry", want: "myregistry"},
		"IPv6 literal with port":             {registry: "[::1]:5000", want: "[::1]:5000"},
		"IPv4 address":                       {registry: "10.0.0.1", want: "10.0.0.1"},
		"glob over a top-level domain":       {registry: "*.io", want: "*.io"},
		"ECR registry is an exact host":      {registry: "123456789012.dkr.ecr.eu-west-1.amazonaws.com", want: "123456789012.dkr.ecr.eu-west-1.amazonaws.com"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p, err := ParsePattern(tc.registry)
			require.NoError(t, err)
			assert.Equal(t, tc.want, p.String())
		})
	}
}

func TestParsePatternErrors(t *testing.T) {
	tests := map[string]struct {
		registry string
		wantErr  string
	}{
		"empty":                         {registry: "", wantErr: "empty"},
		"path":                          {registry: "gcr.io/project", wantErr: "must not contain a path"},
		"trailing slash":                {registry: "gcr.io/", wantErr: "must not contain a path"},
		"scheme":                        {registry: "https://gcr.io", wantErr: "must not contain a scheme"},
		"digest":                        {registry: "gcr.io@" + testDigest, wantErr: "must not contain a tag or digest"},
		"whitespace":                    {registry: " gcr.io", wantErr: "whitespace or control"},
		"control character":             {registry: "gcr.io\r", wantErr: "whitespace or control"},
		"bare glob":                     {registry: "*", wantErr: "glob only allowed as the whole leading label"},
		"glob as partial label":         {registry: "*acr.azurecr.io", wantErr: "glob only allowed as the whole leading label"},
		"glob suffix in label":          {registry: "acr*.azurecr.io", wantErr: "glob only allowed as the whole leading label"},
		"glob in middle label":          {registry: "a.*.azurecr.io", wantErr: "glob only allowed as the whole leading label"},
		"two globs":                     {registry: "*.*.azurecr.io", wantErr: "glob only allowed as the whole leading label"},
		"glob in port":                  {registry: "gcr.io:*", wantErr: "glob only allowed as the whole leading label"},
		"glob before IP literal":        {registry: "*.[::1]", wantErr: "not an IP literal"},
		"glob with nothing after":       {registry: "*.", wantErr: "empty host"},
		"empty port":                    {registry: "gcr.io:", wantErr: "invalid port: empty"},
		"non-numeric port reads as tag": {registry: "gcr.io:latest", wantErr: `invalid port "latest"`},
		"port above 65535":              {registry: "gcr.io:70000", wantErr: "larger than 65535"},
		"port with leading zero":        {registry: "gcr.io:0443", wantErr: `invalid port "0443"`},
		"underscore label":              {registry: "my_registry.com", wantErr: `invalid host label "my_registry"`},
		"empty label":                   {registry: "gcr..io", wantErr: `invalid host label ""`},
		"label ending with dash":        {registry: "*.bad-.io", wantErr: `invalid host label "bad-"`},
		"invalid IPv6 literal":          {registry: "[::g]", wantErr: "invalid IPv6 literal"},
		"only a port":                   {registry: ":5000", wantErr: "empty host"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := ParsePattern(tc.registry)
			require.Error(t, err)
			assert.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func TestMustParsePatternPanicsOnInvalid(t *testing.T) {
	assert.Panics(t, func() { MustParsePattern("gcr.io/project") })
	assert.NotPanics(t, func() { MustParsePattern("gcr.io") })
}

func TestPatternMatches(t *testing.T) {
	tests := map[string]struct {
		pattern string
		host    string
		want    bool
	}{
		"exact host":                            {pattern: "gcr.io", host: "gcr.io", want: true},
		"exact host is not a subdomain match":   {pattern: "gcr.io", host: "us.gcr.io", want: false},
		"exact host is not a suffix match":      {pattern: "gcr.io", host: "evilgcr.io", want: false},
		"upper-case pattern matches lower host": {pattern: "GCR.io", host: "gcr.io", want: true},
		"upper-case host matches lower pattern": {pattern: "gcr.io", host: "GCR.IO", want: true},
		"glob matches one label":                {pattern: "*.azurecr.io", host: "myacr.azurecr.io", want: true},
		"glob does not match zero labels":       {pattern: "*.azurecr.io", host: "azurecr.io", want: false},
		"glob does not match two labels":        {pattern: "*.azurecr.io", host: "a.b.azurecr.io", want: false},
		"glob does not match an empty label":    {pattern: "*.azurecr.io", host: ".azurecr.io", want: false},
		"glob does not match a glued suffix":    {pattern: "*.azurecr.io", host: "evilazurecr.io", want: false},
		"glob does not match a longer domain":   {pattern: "*.example.com", host: "x.example.com.evil.io", want: false},
		"glob is case-insensitive":              {pattern: "*.AzureCR.io", host: "MyACR.azurecr.IO", want: true},
		"glob label must be a DNS label":        {pattern: "*.azurecr.io", host: "my_acr.azurecr.io", want: false},
		"glob with port matches same port":      {pattern: "*.example.com:5000", host: "r.example.com:5000", want: true},
		"glob with port rejects missing port":   {pattern: "*.example.com:5000", host: "r.example.com", want: false},
		"glob without port rejects a port":      {pattern: "*.example.com", host: "r.example.com:5000", want: false},
		"pattern without port rejects :443":     {pattern: "gcr.io", host: "gcr.io:443", want: false},
		"pattern with :443 rejects no port":     {pattern: "gcr.io:443", host: "gcr.io", want: false},
		"different ports do not match":          {pattern: "gcr.io:443", host: "gcr.io:8443", want: false},
		"same port matches":                     {pattern: "localhost:5000", host: "localhost:5000", want: true},
		"docker hub alias pattern matches host": {pattern: "index.docker.io", host: "docker.io", want: true},
		"docker.io pattern matches alias host":  {pattern: "docker.io", host: "registry-1.docker.io", want: true},
		"IPv6 literal with port":                {pattern: "[::1]:5000", host: "[::1]:5000", want: true},
		"IPv6 literal port mismatch":            {pattern: "[::1]:5000", host: "[::1]", want: false},
		"non-ASCII look-alike does not fold":    {pattern: "k8s.io", host: "\u212a8s.io", want: false},
		"empty host never matches":              {pattern: "gcr.io", host: "", want: false},
		"empty host never matches a glob":       {pattern: "*.io", host: "", want: false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, MustParsePattern(tc.pattern).Matches(tc.host))
		})
	}
}

func TestZeroPatternMatchesNothing(t *testing.T) {
	var p Pattern
	assert.False(t, p.Matches(""))
	assert.False(t, p.Matches("docker.io"))
	assert.Empty(t, p.String())
}
