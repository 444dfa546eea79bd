"""The customer portal, /portal/: server-rendered like the dashboard (/ui/), signed in with
OpenID Connect against the issuer the settings name (Clerk, or any OIDC provider)."""
