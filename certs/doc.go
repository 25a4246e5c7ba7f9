// Package certs owns lanyard's serving certificates: where the certificate the admission server
// presents comes from (Files: a mounted tls.crt/tls.key, reloaded when they change — the files and
// cert-manager modes; SecretSource: the Secret the self-signed mode keeps, watched), the
// self-signed authority itself (a CA and a leaf issued and renewed by the elected leader, Rotator,
// with the CA published in the caBundle of lanyard's webhook configurations), and the readiness
// rule shared by the modes that manage caBundles (BundleChecker: a replica is ready only when every
// one of lanyard's webhook configurations trusts the CA that signed the certificate it serves).
package certs
