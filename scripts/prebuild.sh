#!/bin/sh
# npm run prebuild: the addon, prebuilt for the package (prebuilds/<platform>-<arch>/).
#   prebuildify --napi --strip: one Node-API binary serves every Node version (>= 20).
#   --tag-libc: the file is named for its libc (cluster2.glibc.node), so node-gyp-build
#   skips it on musl (Alpine) instead of loading a glibc binary there.
# On Linux x64 with Debian's g++-aarch64-linux-gnu, linux-arm64 is cross-compiled too.
# No musl prebuild: Debian has no C++ toolchain for musl (musl-tools is C only, and the
# addon needs libstdc++); on Alpine the install compiles it or the JS fallback runs.
# The host's own build runs last: prebuildify moves build/Release/cluster2.node into
# prebuilds/, so build/ never keeps a foreign binary.
set -eu
cd "$(dirname "$0")/.."
pb=node_modules/.bin/prebuildify
if [ "$(uname -s)-$(uname -m)" = Linux-x86_64 ]; then
  if command -v aarch64-linux-gnu-g++ >/dev/null 2>&1; then
    CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++ LINK=aarch64-linux-gnu-g++ AR=aarch64-linux-gnu-ar \
      "$pb" --napi --strip --tag-libc --arch arm64 --strip-bin aarch64-linux-gnu-strip
  else
    echo "cluster2: no aarch64-linux-gnu-g++ (apt-get install g++-aarch64-linux-gnu): no linux-arm64 prebuild" >&2
  fi
fi
"$pb" --napi --strip --tag-libc
