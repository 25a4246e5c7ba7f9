// Package manifest reads Kubernetes manifests for the CLI: files, directories and stdin, split into
// documents that keep their exact bytes (so untouched documents pass through byte for byte), their
// position (so every error names file, document and line) and their JSON form.
package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// Stdin is the Source of documents read from standard input.
const Stdin = "<stdin>"

// Document is one YAML (or JSON) document of an input.
type Document struct {
	Source string // file path, or Stdin
	Index  int    // 1-based position within Source
	Line   int    // 1-based line of Source where the document starts
	Raw    []byte // the document's bytes as read, without its separator line
	// JSON is the document as JSON; nil when the document is empty (only comments or blank).
	JSON []byte

	APIVersion string
	Kind       string
	Name       string
	Namespace  string
}

// Location names the document by position: "app.yaml document 2".
func (d *Document) Location() string {
	return fmt.Sprintf("%s document %d", d.Source, d.Index)
}

// Ref names the document in messages: "app.yaml document 2 (Deployment web)".
func (d *Document) Ref() string {
	var b strings.Builder
	b.WriteString(d.Location())
	if d.Kind != "" {
		b.WriteString(" (")
		b.WriteString(d.Kind)
		if d.Name != "" {
			b.WriteString(" ")
			b.WriteString(d.Name)
		}
		b.WriteString(")")
	}
	return b.String()
}

// Error is a problem with one input document.
type Error struct {
	Doc *Document
	Err error
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s, line %d: %v", e.Doc.Ref(), e.Doc.Line, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// ReadPaths reads every path in order: "-" is stdin, a directory is walked recursively for .yaml,
// .yml and .json files in lexical order, anything else is a file.
func ReadPaths(paths []string, stdin io.Reader) ([]*Document, error) {
	var docs []*Document
	for _, p := range paths {
		if p == "-" {
			data, err := io.ReadAll(stdin)
			if err != nil {
				return nil, fmt.Errorf("reading standard input: %w", err)
			}
			d, err := Split(Stdin, data)
			if err != nil {
				return nil, err
			}
			docs = append(docs, d...)
			continue
		}
		files, err := expand(p)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, err
			}
			d, err := Split(f, data)
			if err != nil {
				return nil, err
			}
			docs = append(docs, d...)
		}
	}
	return docs, nil
}

func expand(p string) ([]string, error) {
	info, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		return []string{p}, nil
	}
	var files []string
	err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		switch strings.ToLower(filepath.Ext(path)) {
		case ".yaml", ".yml", ".json":
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no .yaml, .yml or .json files in directory", p)
	}
	sort.Strings(files)
	return files, nil
}

// Split cuts a stream into documents at "---" separator lines and parses each one.
func Split(source string, data []byte) ([]*Document, error) {
	var docs []*Document
	start, startLine, line := 0, 1, 1
	flush := func(end int) error {
		raw := data[start:end]
		if len(docs) == 0 && len(bytes.TrimSpace(raw)) == 0 && end != len(data) {
			return nil // nothing before a leading separator
		}
		d := &Document{Source: source, Index: len(docs) + 1, Line: startLine, Raw: raw}
		docs = append(docs, d)
		return d.parse()
	}
	for pos := 0; pos < len(data); {
		end := bytes.IndexByte(data[pos:], '\n')
		next := len(data)
		if end >= 0 {
			next = pos + end + 1
		}
		if isSeparator(data[pos:next]) {
			if err := flush(pos); err != nil {
				return nil, err
			}
			start, startLine = next, line+1
		}
		pos = next
		line++
	}
	if start < len(data) || len(docs) == 0 {
		if err := flush(len(data)); err != nil {
			return nil, err
		}
	}
	return docs, nil
}

func isSeparator(line []byte) bool {
	if !bytes.HasPrefix(line, []byte("---")) {
		return false
	}
	rest := bytes.TrimSpace(line[3:])
	return len(rest) == 0 || rest[0] == '#'
}

// parse fills JSON and the type and object identity.
func (d *Document) parse() error {
	if isBlank(d.Raw) {
		return nil
	}
	// Strict: a key written twice is an error, not "the last one wins" silently.
	js, err := yaml.YAMLToJSONStrict(d.Raw)
	if err != nil {
		return &Error{Doc: d, Err: fmt.Errorf("malformed YAML: %w", err)}
	}
	if bytes.Equal(bytes.TrimSpace(js), []byte("null")) {
		return nil
	}
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(js, &head); err != nil {
		return &Error{Doc: d, Err: fmt.Errorf("not a Kubernetes object (apiVersion, kind, metadata): %w", err)}
	}
	d.JSON = js
	d.APIVersion, d.Kind = head.APIVersion, head.Kind
	d.Name, d.Namespace = head.Metadata.Name, head.Metadata.Namespace
	return nil
}

// isBlank reports whether a document holds only blank lines and comments.
func isBlank(raw []byte) bool {
	for _, line := range bytes.Split(raw, []byte("\n")) {
		t := bytes.TrimSpace(line)
		if len(t) != 0 && t[0] != '#' {
			return false
		}
	}
	return true
}
