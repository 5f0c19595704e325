"""JupyterHub on Kubernetes with kubelab: KubelabSpawner + GenericOAuthenticator (real OIDC).

Use it as the hub's config file (a hub image with `pip install "kubelab[hub]"`), or load it from
Zero to JupyterHub's `hub.extraConfig` (see values.yaml next to this file). Everything
site-specific comes from the environment, so the file itself stays generic:

  OIDC_ISSUER                 e.g. https://keycloak.example.com/realms/ml
  OIDC_AUTHORIZE_URL / OIDC_TOKEN_URL / OIDC_USERINFO_URL
                              default to Keycloak-style paths under OIDC_ISSUER
  OIDC_CLIENT_ID / OIDC_CLIENT_SECRET      from a Kubernetes Secret, never inline
  OIDC_USERNAME_CLAIM         default preferred_username
  OIDC_GROUPS_KEY             auth_state key of the groups, default oauth_user.groups
  OIDC_SCOPES                 default "openid profile email offline_access"
  OIDC_USERDATA_FROM_ID_TOKEN "1" to read claims from the id_token (Entra ID)
  JUPYTERHUB_PUBLIC_URL       https://hub.example.com (for the OAuth callback)
  JUPYTERHUB_CRYPT_KEY        32 random bytes, hex: encrypts tokens in auth_state
  KUBELAB_PROFILES_FILE       default /etc/kubelab/profiles.yaml (a ConfigMap)
  KUBELAB_ALLOWED_GROUPS      optional comma list: only these groups may log in

Claims mapping per provider: docs/spawner.md.
"""

from __future__ import annotations

import os

from kubelab.spawner import check_profiles_file_or_exit
from kubelab.spawner.tokens import make_refresh_user_hook, stamp_token_expiry

c = get_config()  # type: ignore[name-defined]  # noqa: F821
env = os.environ.get

issuer = env("OIDC_ISSUER", "").rstrip("/")
public_url = env("JUPYTERHUB_PUBLIC_URL", "").rstrip("/")
profiles_file = env("KUBELAB_PROFILES_FILE", "/etc/kubelab/profiles.yaml")

# an invalid profiles file stops the hub at start, naming the field
check_profiles_file_or_exit(profiles_file)

# ---- OIDC login ------------------------------------------------------------------------
c.JupyterHub.authenticator_class = "generic-oauth"
c.GenericOAuthenticator.client_id = env("OIDC_CLIENT_ID", "kubelab")
c.GenericOAuthenticator.client_secret = env("OIDC_CLIENT_SECRET", "")
c.GenericOAuthenticator.oauth_callback_url = f"{public_url}/hub/oauth_callback"
c.GenericOAuthenticator.authorize_url = env(
    "OIDC_AUTHORIZE_URL", f"{issuer}/protocol/openid-connect/auth"
)
c.GenericOAuthenticator.token_url = env("OIDC_TOKEN_URL", f"{issuer}/protocol/openid-connect/token")
if env("OIDC_USERDATA_FROM_ID_TOKEN") == "1":
    c.GenericOAuthenticator.userdata_from_id_token = True
else:
    c.GenericOAuthenticator.userdata_url = env(
        "OIDC_USERINFO_URL", f"{issuer}/protocol/openid-connect/userinfo"
    )
c.GenericOAuthenticator.scope = env("OIDC_SCOPES", "openid profile email offline_access").split()
c.GenericOAuthenticator.username_claim = env("OIDC_USERNAME_CLAIM", "preferred_username")
c.GenericOAuthenticator.login_service = env("OIDC_LOGIN_SERVICE", "single sign-on")
c.GenericOAuthenticator.basic_auth = True
# the OIDC groups claim becomes JupyterHub groups, which gate kubelab profiles
c.GenericOAuthenticator.manage_groups = True
c.GenericOAuthenticator.auth_state_groups_key = env("OIDC_GROUPS_KEY", "oauth_user.groups")
allowed_groups = [g for g in env("KUBELAB_ALLOWED_GROUPS", "").split(",") if g]
if allowed_groups:
    c.GenericOAuthenticator.allowed_groups = set(allowed_groups)
else:
    c.GenericOAuthenticator.allow_all = True
c.GenericOAuthenticator.admin_groups = set(filter(None, env("KUBELAB_ADMIN_GROUPS", "").split(",")))
# tokens: kept encrypted (JUPYTERHUB_CRYPT_KEY), renewed before expiry, mounted as files
c.Authenticator.enable_auth_state = True
c.Authenticator.refresh_pre_spawn = True
c.Authenticator.auth_refresh_age = 300
c.GenericOAuthenticator.modify_auth_state_hook = stamp_token_expiry
c.GenericOAuthenticator.refresh_user_hook = make_refresh_user_hook(300)

# ---- spawner ---------------------------------------------------------------------------
c.JupyterHub.spawner_class = "kubelab.spawner.KubelabSpawner"
c.KubelabSpawner.profiles_file = profiles_file
c.KubelabSpawner.token_refresh_margin = 300
c.KubelabSpawner.enable_user_namespaces = True
c.KubelabSpawner.user_namespace_template = "kubelab-{username}"
c.KubelabSpawner.user_namespace_labels = {"kubelab.io/user-namespace": "true"}
c.KubelabSpawner.storage_pvc_ensure = True
c.KubelabSpawner.pvc_name_template = "kubelab-home-{username}"
c.KubelabSpawner.storage_capacity = env("KUBELAB_HOME_SIZE", "10Gi")
c.KubelabSpawner.default_url = "/lab"
c.KubelabSpawner.start_timeout = 600  # image pulls of CUDA images are slow
c.KubelabSpawner.poll_interval = 60
