#!/usr/bin/env bash
# Remove the capture set up by capture.sh: the jumps into ISTIO_* chains, then the chains.
#   scripts/iptables/cleanup.sh [--no-ipv6] [--dry-run]
set -euo pipefail
exec node "$(dirname "$0")/../../dist/main.js" iptables --cleanup "$@"
