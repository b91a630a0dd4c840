"""siteflow: telecom field-service work run as Prefect flows.

The application shell: settings, database, the decision path, audit chain, CLI and the
services `siteflow up` starts. Flows, tasks and models live in their own top-level packages.
"""

__version__ = "0.1.0"
