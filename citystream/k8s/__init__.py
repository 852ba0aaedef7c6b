"""Kubernetes manifests: the generated part of deploy/k8s/base (topics, users, workloads, rules, dashboards)."""
