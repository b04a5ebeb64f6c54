"""One JupyterHub per tenant: settings, authentication, spawning, and the Voila dashboard service."""
