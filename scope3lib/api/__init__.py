"""The integration API: a REST service per tenant (docs/api.md).

Run by the tenant's JupyterHub as the service ``api`` (``/services/api/``) or standalone with
``scope3 api serve SLUG``. It connects with the tenant's own two database roles, read-only for reads and
read-write for writes, so row-level security stays the one boundary between tenants; it never holds the
admin URL. :func:`scope3lib.api.app.create_app` builds the ASGI application.
"""
