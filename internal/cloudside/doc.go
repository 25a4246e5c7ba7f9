// Package cloudside derives the cloud side of lanyard's IdentityAssociations, and reads existing
// cloud-side setups back into associations.
//
// An IdentityAssociation says what lanyard injects into a pod; the identity works only when the
// cloud trusts the cluster's ServiceAccount token for it: an EKS Pod Identity association, an IAM
// role trust policy naming the cluster's OIDC issuer (IRSA), a federated identity credential on an
// Azure managed identity, an IAM binding for a GCP workload identity principal. Export builds those
// from the associations (eksctl ClusterConfig, IAM trust policies, az and gcloud commands), with
// exactly the subject, audience and issuer strings that lanyard's injected tokens carry. Import turns
// an eksctl ClusterConfig's podIdentityAssociations, or ServiceAccounts annotated for the EKS and
// Azure webhooks, into IdentityAssociations. Problems reports associations whose cloud side cannot
// be right (for lanyard check).
//
// Everything here is pure: documents in, documents out. Each function builds its whole output
// before returning it, so a caller never prints half a document. Associations are taken exactly as
// they are named (namespace and ServiceAccount); nothing is expanded.
package cloudside
