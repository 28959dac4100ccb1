"""podfleet: run every task of a DAG fleet as its own Kubernetes pod, from a scaled worker pool."""

__version__ = "0.1.0"
