#!/bin/sh
# Selects the role of the one image; the same entry files the root package.json scripts run.
set -e
role="${1:-api}"
[ "$#" -gt 0 ] && shift
case "$role" in
  api)     exec node packages/api/src/server.ts "$@" ;;
  worker)  exec node packages/worker/src/main.ts "$@" ;;
  cli)     exec node packages/cli/src/main.ts "$@" ;;
  migrate) exec node packages/core/src/db/migrate-main.ts "$@" ;;
  *)
    echo "usage: api | worker | cli [manage-referral-payouts arguments] | migrate (got \"$role\")" >&2
    exit 2
    ;;
esac
