// Package webhook is lanyard's admission transport. PodMutator decodes an AdmissionReview keeping
// the pod raw, resolves policy (policy.Resolver over an in-memory policy.Reader), computes the
// changes (mutate.Compute) and answers with targeted JSON Patch operations against the pod as
// received; AssociationValidator keeps one IdentityAssociation per ServiceAccount. Server wires
// them into controller-runtime's webhook server with caches, health, metrics and a graceful drain.
package webhook
