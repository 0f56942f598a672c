#!/bin/sh
# Registers the namespace Aftercare uses once the Temporal server answers (the supported server image,
# unlike the retired auto-setup image, creates none). Aftercare's worker registers its own search
# attributes at start.
set -eu

NAMESPACE="${DEFAULT_NAMESPACE:-default}"
ADDRESS="${TEMPORAL_ADDRESS:-temporal:7233}"
RETENTION="${NAMESPACE_RETENTION:-30d}"
ATTEMPTS=60

attempt=1
until temporal operator cluster health --address "${ADDRESS}" >/dev/null 2>&1; do
  if [ "${attempt}" -ge "${ATTEMPTS}" ]; then
    echo "Temporal at ${ADDRESS} did not become healthy"
    exit 1
  fi
  attempt=$((attempt + 1))
  sleep 2
done

if temporal operator namespace describe --namespace "${NAMESPACE}" --address "${ADDRESS}" >/dev/null 2>&1; then
  echo "namespace ${NAMESPACE} exists"
else
  temporal operator namespace create --namespace "${NAMESPACE}" --retention "${RETENTION}" --address "${ADDRESS}"
  echo "namespace ${NAMESPACE} created"
fi
