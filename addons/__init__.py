"""mitmproxy addons for the egress side of Airlock (HTTPS_PROXY). Module names here must not
shadow stdlib or third-party modules: mitmproxy puts this folder first on sys.path."""
