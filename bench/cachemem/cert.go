package main

import (
	"os"
	"path/filepath"
	"time"

	"github.com/lanyard-dev/lanyard/certs"
)

// selfSigned writes tls.crt and tls.key for 127.0.0.1 into dir (lanyard's own authority).
func selfSigned(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	ca, err := certs.NewCA(time.Now(), 48*time.Hour)
	if err != nil {
		return err
	}
	leaf, err := certs.IssueServing(ca, []string{"127.0.0.1"}, time.Now(), 24*time.Hour)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), leaf.KeyPEM, 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "tls.crt"), leaf.CertPEM, 0o600)
}
