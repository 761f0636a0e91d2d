#!/usr/bin/env bash
# Builds llama.cpp's `llama-server` from the source that the npm package node-llama-cpp ships
# (llama/gitRelease.bundle, a git bundle), CPU only, and caches it. About 20 minutes on 2 cores the
# first time; a second call prints the cached binary's path at once.
#   conformance/build-llama-server.sh            -> prints the path of llama-server
# Env: SHARDLINE_REAL_CACHE (default ~/.cache/shardline-real), NODE_LLAMA_CPP_VERSION (default 3.21.1),
#      BUILD_JOBS (default: nproc).
set -euo pipefail
version="${NODE_LLAMA_CPP_VERSION:-3.21.1}"
cache="${SHARDLINE_REAL_CACHE:-$HOME/.cache/shardline-real}/node-llama-cpp-$version"
bin="$cache/build/bin/llama-server"
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi

mkdir -p "$cache"
cd "$cache"
if [ ! -f package/llama/gitRelease.bundle ]; then
  echo "build-llama-server: fetching node-llama-cpp@$version from the npm registry" >&2
  tgz=$(npm pack --silent "node-llama-cpp@$version")
  tar xzf "$tgz" package/llama/gitRelease.bundle package/llama/llama.cpp.info.json
  rm -f "$tgz"
fi
if [ ! -d src/.git ]; then
  rm -rf src
  git clone -q package/llama/gitRelease.bundle src
fi
command -v cmake >/dev/null || { echo "build-llama-server: cmake is required (apt-get install cmake)" >&2; exit 1; }
echo "build-llama-server: building llama-server ($(cat package/llama/llama.cpp.info.json 2>/dev/null | tr -d '\n ')) — about 20 min on 2 cores" >&2
cmake -S src -B build -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF -DLLAMA_CURL=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DBUILD_SHARED_LIBS=OFF >&2
cmake --build build --target llama-server -j "${BUILD_JOBS:-$(nproc)}" >&2
echo "$bin"
