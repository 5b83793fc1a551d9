#!/bin/sh
# Builds TTHRESH (Ballester-Ripoll, Lindstrom & Pajarola, "TTHRESH: Tensor Compression for
# Multidimensional Visual Data", 2019) from its source into bench/tthresh/ for
# bench_neural.py. Needs git and g++ (with OpenMP); no cmake: its CMakeLists only globs
# src/*.cpp with Eigen (shipped in external/) on the include path.
#   TTHRESH_GIT=<url or local clone> sh bench/build_tthresh.sh
set -e
cd "$(dirname "$0")"
[ -d tthresh/src ] || git clone --depth 1 "${TTHRESH_GIT:-https://github.com/rballester/tthresh}" tthresh
g++ -O3 -std=c++11 -fopenmp -w -Itthresh/external tthresh/src/tthresh.cpp -o tthresh/tthresh
echo "built bench/tthresh/tthresh"
