"""The one layer of podfleet that knows Kubernetes: its naming rules, quantities, the API client
and the API's failures by name (:mod:`podfleet.kube.errors`).

Nothing outside ``podfleet.kube`` imports the ``kubernetes`` package directly (checked by
import-linter), so the client version podfleet runs beside (36.x for Airflow's provider, 37.x
current) matters in one place only.
"""
