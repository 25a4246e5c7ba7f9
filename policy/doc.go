// Package policy answers "what applies to this pod": given a pod's namespace, ServiceAccount and
// images, it resolves the cloud identities (from IdentityAssociations or, for drop-in compatibility,
// the single-cloud webhooks' ServiceAccount annotations) and the registry attachments that apply,
// with the conflicts and warnings found on the way. It reads policy through Reader, which has two
// implementations: objects loaded from files (lanyard inject/check) and informer caches (the webhook).
// The API types live in policy/v1alpha1.
package policy
