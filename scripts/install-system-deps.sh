#!/usr/bin/env bash
# Installs the Debian packages the suite and its tests need, only those missing.
# Real servers the tests start: MariaDB Galera (mariadb-server galera-4 mariadb-backup),
# HAProxy, memcached, keepalived; iproute2 for network namespaces.
# Galera SST by mariabackup (tests/servers/galera.py) runs wsrep_sst_mariabackup, which needs
# mariadb-backup (mariadb-backup, mbstream), socat (the stream) and ss (iproute2) or lsof to see
# its listener; the galera agent's health query and doctor use the mariadb client protocol only.
# lua5.3 runs lua/fscluster.lua (the fs_cli hooks) in tests with FreeSWITCH's Lua API stubbed.
set -euo pipefail
# With arguments, only those packages (`make run` needs python3-venv alone).
packages=(mariadb-server mariadb-client galera-4 mariadb-backup haproxy memcached keepalived
          iproute2 procps rsync socat python3-venv lua5.3)
if [ $# -gt 0 ]; then
    packages=("$@")
fi
missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "system packages: all present"
    exit 0
fi
echo "system packages: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    echo "error: need root to apt-get install ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Do not let the packages start their own system services; tests start private instances.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"
