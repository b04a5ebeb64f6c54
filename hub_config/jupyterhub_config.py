# The one JupyterHub configuration of every tenant hub (`scope3 hub start SLUG` runs it).
#
# Layers: the defaults in scope3lib.hub.settings, then the tenant's generated file
# DATA_DIR/tenants/<slug>/hub.yaml, then its secrets; scope3lib.hub.config.apply() only sets values.
from scope3lib import db
from scope3lib.config import Settings, TenantSettings
from scope3lib.errors import ConfigurationError
from scope3lib.hub import config as hub_config
from scope3lib.hub import settings as hub_settings

c = get_config()  # type: ignore[name-defined]  # noqa: F821 - provided by JupyterHub

_tenant = TenantSettings().hub_tenant
if not _tenant:
    raise ConfigurationError("SCOPE3_HUB_TENANT is not set: start a tenant's hub with `scope3 hub start SLUG`")
_platform = Settings()
hub_config.apply(c, hub_settings.load(_platform.data_dir, _tenant), db.admin_url(_platform))
