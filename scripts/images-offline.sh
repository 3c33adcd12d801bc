#!/usr/bin/env bash
# The air-gapped path: build, from Debian packages, local stand-ins for the two registry
# images that docker-compose.yml, the Dockerfile and the tests name, so they run unchanged
# on a machine where no container registry can be reached:
#   eclipse-mosquitto:2   Debian's mosquitto 2.0, user and group 1883 as in the official image
#   python:3.11-slim      Debian's Python 3.11 in a venv on PATH, pip ready to install
# Both start from a minimal Debian made with debootstrap from the mirror apt already uses.
# With a registry, do not run this: `docker compose` pulls the official images.
#
#   scripts/images-offline.sh            build what is missing (make images-offline)
#   scripts/images-offline.sh IMAGE...   only these (and the base), e.g. eclipse-mosquitto:2
#   FORCE=1 scripts/images-offline.sh    rebuild them and the base
#
# Extra CA roots: every *.crt in EXTRA_CA_DIR (default /usr/local/share/ca-certificates,
# where Debian keeps a site's own roots) goes into the base image's trust store, and pip
# is pointed at that store, so `pip install` in `docker build` works behind a proxy or
# mirror that re-signs TLS. Verification stays on; a missing root fails loudly.
set -euo pipefail
cd "$(dirname "$0")/.."

SUITE=${SUITE:-bookworm}
BASE_IMAGE=${BASE_IMAGE:-mqttpush-offline/debian:$SUITE}
EXTRA_CA_DIR=${EXTRA_CA_DIR:-/usr/local/share/ca-certificates}
FORCE=${FORCE:-}
DOCKER=${DOCKER:-docker}

say() { echo "images-offline: $*" >&2; }

have_image() { [ -z "$FORCE" ] && $DOCKER image inspect "$1" >/dev/null 2>&1; }

mirror() {  # the Debian mirror apt is configured with (deb822 or one-line sources)
  local found=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    found=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$found" ] && [ -f /etc/apt/sources.list ]; then
    found=$(awk '$1 == "deb" && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list)
  fi
  echo "${MIRROR:-${found:-http://deb.debian.org/debian}}"
}

build_base() {
  if have_image "$BASE_IMAGE"; then say "$BASE_IMAGE is there"; return; fi
  command -v debootstrap >/dev/null || { say "debootstrap is missing: apt-get install debootstrap"; exit 1; }
  [ "$(id -u)" = 0 ] || { say "debootstrap needs root"; exit 1; }
  local root url
  url=$(mirror)
  root=$(mktemp -d /tmp/mqttpush-rootfs.XXXXXX)
  trap 'rm -rf "$root"' RETURN
  say "debootstrap $SUITE from $url"
  debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$root" "$url" >"$root.log" 2>&1 \
    || { tail -20 "$root.log" >&2; rm -f "$root.log"; exit 1; }
  rm -f "$root.log"
  # The same suites inside as on the host: apt-get in builds reaches the same mirror.
  cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $url
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  if [ -f /etc/apt/sources.list.d/debian.sources ] && grep -q debian-security /etc/apt/sources.list.d/debian.sources; then
    security=$(awk '/^URIs:/ && /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
    printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$security" "$SUITE" >>"$root/etc/apt/sources.list.d/debian.sources"
  fi
  rm -f "$root/etc/apt/sources.list"
  # The site's extra CA roots, merged into the image's bundle (/etc/ssl/certs/ca-certificates.crt).
  local roots=0
  if [ -d "$EXTRA_CA_DIR" ]; then
    for crt in "$EXTRA_CA_DIR"/*.crt; do
      [ -f "$crt" ] || continue
      cp "$crt" "$root/usr/local/share/ca-certificates/"
      roots=$((roots + 1))
    done
  fi
  chroot "$root" update-ca-certificates >/dev/null
  say "extra CA roots from $EXTRA_CA_DIR: $roots"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | $DOCKER import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
    -c 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >/dev/null
  say "built $BASE_IMAGE"
}

WANTED=("$@")
[ ${#WANTED[@]} -gt 0 ] || WANTED=(eclipse-mosquitto:2 python:3.11-slim)
for image in "${WANTED[@]}"; do
  case "$image" in eclipse-mosquitto:2|python:3.11-slim) ;; *) say "no stand-in for $image"; exit 2 ;; esac
done

build_from() {  # build_from TAG DOCKERFILE-TEXT: an image from the base, no build context
  local tag=$1 text=$2
  [[ " ${WANTED[*]} " == *" $tag "* ]] || return 0
  if have_image "$tag"; then say "$tag is there"; return; fi
  say "building $tag"
  printf '%s\n' "$text" | $DOCKER build -q --build-arg "BASE=$BASE_IMAGE" -t "$tag" - >/dev/null
  say "built $tag"
}

build_base

# eclipse-mosquitto:2 as the official image behaves: config in /mosquitto/config, data in
# /mosquitto/data, the broker dropping to user mosquitto (1883:1883) when started as root.
# stdbuf keeps stdout line-buffered, so its log lines reach `docker logs` as they happen
# (testcontainers waits for the "running" line).
build_from eclipse-mosquitto:2 "$(cat <<'EOF'
ARG BASE
FROM $BASE
RUN groupadd --system --gid 1883 mosquitto \
    && useradd --system --uid 1883 --gid 1883 --home-dir /var/empty --shell /usr/sbin/nologin mosquitto \
    && apt-get update && apt-get install -y --no-install-recommends mosquitto mosquitto-clients \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /mosquitto/config /mosquitto/data /mosquitto/log \
    && printf 'listener 1883\nallow_anonymous true\n' > /mosquitto/config/mosquitto.conf \
    && chown -R 1883:1883 /mosquitto \
    && printf '#!/bin/sh\nset -e\n[ "$(id -u)" = 0 ] && chown -R mosquitto:mosquitto /mosquitto/data /mosquitto/log 2>/dev/null || true\nexec stdbuf -oL -eL "$@"\n' > /docker-entrypoint.sh \
    && chmod 755 /docker-entrypoint.sh
VOLUME ["/mosquitto/data", "/mosquitto/log"]
EXPOSE 1883
ENTRYPOINT ["/docker-entrypoint.sh"]
CMD ["/usr/sbin/mosquitto", "-c", "/mosquitto/config/mosquitto.conf"]
EOF
)"

# python:3.11-slim as the Dockerfile uses it: python, pip and installed console scripts
# on PATH (a venv, since Debian's own Python refuses system-wide pip installs).
build_from python:3.11-slim "$(cat <<'EOF'
ARG BASE
FROM $BASE
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /usr/local/python \
    && ln -s /usr/local/python/bin/python /usr/local/bin/python \
    && ln -s /usr/local/python/bin/pip /usr/local/bin/pip
ENV PATH=/usr/local/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8
CMD ["python3"]
EOF
)"
