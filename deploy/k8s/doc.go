// Package k8s holds telechaos' Kubernetes manifests (a kustomize base and
// overlays for sharded runs: an Indexed Job of shards, a merge Job, the
// scenario ConfigMap and the reports volume). Its test decodes every manifest
// strictly into the Kubernetes API types, so a typo fails the build.
package k8s
