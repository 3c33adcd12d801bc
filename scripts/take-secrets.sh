#!/bin/sh
# Compose's secure profile: hand a container its own secrets, then run its command.
#   take-secrets DEST UID:GID [--drop] -- CMD...
# The material is bind-mounted read-only in /run/secrets-in, with the owner and modes it
# has on the host (0600 for the host user, or group mosquitto there), which the
# container's user (1883 for the broker, 10001 for the agents) cannot read. Started as
# root, this copies the files to DEST (a tmpfs: never in an image layer or on disk),
# owned by UID:GID, mode 0400 in a 0700 folder, then runs CMD: as UID:GID with --drop
# (the agents), or as root for the broker, which drops to its own user by itself.
# Each container mounts only its own identity's files, so no other container's user
# can read them.
set -eu
dest=$1 owner=$2
shift 2
drop=""
if [ "${1:-}" = --drop ]; then drop=1; shift; fi
[ "${1:-}" = -- ] && shift
src=${TAKE_SECRETS_FROM:-/run/secrets-in}
[ "$(id -u)" = 0 ] || { echo "take-secrets: must start as root to copy $src" >&2; exit 1; }
mkdir -p "$dest"
for file in "$src"/*; do
  [ -f "$file" ] || continue
  cp "$file" "$dest/"
done
chown -R "$owner" "$dest"
chmod 0700 "$dest"
chmod 0400 "$dest"/*
if [ -n "$drop" ]; then
  exec setpriv --reuid="${owner%%:*}" --regid="${owner##*:}" --clear-groups -- "$@"
fi
exec "$@"
