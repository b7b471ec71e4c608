#!/usr/bin/env bash
# Vendors the chart library into web/static/vendor/: uPlot from npm, at the
# version package-lock.json pins. The result is committed, so building ferry
# needs neither npm nor the network: ferryd embeds web/static as it is
# (core/http/web_embed.cmake). Run this after changing uplot's version in
# package.json (then `npm install` once to update the lockfile).
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --loglevel=error
mkdir -p static/vendor
cp node_modules/uplot/dist/uPlot.iife.min.js node_modules/uplot/dist/uPlot.min.css static/vendor/
cp node_modules/uplot/LICENSE static/vendor/uPlot.LICENSE.txt
echo "web/build.sh: uPlot $(node -p 'require("./node_modules/uplot/package.json").version') in static/vendor/"
