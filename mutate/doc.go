// Package mutate is lanyard's pure mutation core: a pod and the policy resolved for it in, the
// changes out. It implements the injection contract (projected token volumes, mounts, environment,
// image pull secrets, the lanyard.dev/injected record) and the per-pod controls (skip and allow
// lists, token lifetime). It does no I/O and keeps no state.
//
// The same Changes serve both doors: Patch renders targeted JSON Patch "add" operations against the
// pod's original JSON (the webhook; fields unknown to the compiled API types survive because the pod
// is never re-marshalled), and Apply edits a typed pod (the CLI's report, tests). Computing the
// changes on the result again yields none: the webhook's reinvocation relies on it.
package mutate
