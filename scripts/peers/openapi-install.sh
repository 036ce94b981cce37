#!/usr/bin/env bash
# Installs the independent OpenAPI validator (PyPI openapi-spec-validator and
# openapi-schema-validator, pinned in openapi-requirements.txt) into a venv for the ciam-axum
# OpenAPI tests, and prints CIAM_TEST_OPENAPI_PYTHON=<the venv's python>. Idempotent.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
venv="${CIAM_OPENAPI_VENV:-$PEERS_RUN/openapi-venv}"
if ! "$venv/bin/python" -c 'import openapi_spec_validator, openapi_schema_validator' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$PEERS_HERE/openapi-requirements.txt"
fi
echo "CIAM_TEST_OPENAPI_PYTHON=$venv/bin/python"
