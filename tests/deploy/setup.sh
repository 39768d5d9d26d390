#!/usr/bin/env bash
# Installs the npm packages tests/deploy/validate-k8s.mjs needs (kubernetes-models, yaml) into
# DIR/node_modules, once: later runs find them and return at once. Not committed anywhere; needs
# node + npm (Debian: nodejs npm) and the npm registry the first time.
#   tests/deploy/setup.sh DIR
set -euo pipefail
dir="${1:?usage: setup.sh DIR}"
KUBERNETES_MODELS_VERSION="${KUBERNETES_MODELS_VERSION:-^4.5.1}"
YAML_VERSION="${YAML_VERSION:-^2.4.0}"

if [ -f "$dir/node_modules/kubernetes-models/package.json" ] && [ -f "$dir/node_modules/yaml/package.json" ]; then
  echo "setup: kubernetes-models and yaml already in $dir/node_modules"
  exit 0
fi
command -v node >/dev/null || { echo "setup: node not found (Debian package nodejs)" >&2; exit 1; }
command -v npm >/dev/null || { echo "setup: npm not found (Debian package npm)" >&2; exit 1; }
mkdir -p "$dir"
echo "setup: npm install kubernetes-models@$KUBERNETES_MODELS_VERSION yaml@$YAML_VERSION into $dir"
if ! timeout 240 npm install --no-save --no-audit --no-fund --no-package-lock --loglevel=error \
      --fetch-retries=1 --fetch-retry-mintimeout=2000 --fetch-retry-maxtimeout=5000 \
      --prefix "$dir" "kubernetes-models@$KUBERNETES_MODELS_VERSION" "yaml@$YAML_VERSION"; then
  echo "setup: npm install failed: is the npm registry reachable? (registry: $(npm config get registry 2>/dev/null);" \
       "behind a proxy: npm config set proxy/https-proxy)" >&2
  exit 1
fi
node -e "require('$dir/node_modules/kubernetes-models/v1'); require('$dir/node_modules/yaml')" \
  || { echo "setup: installed packages do not load with $(node --version)" >&2; exit 1; }
echo "setup: ok"
