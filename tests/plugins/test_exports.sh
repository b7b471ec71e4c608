#!/bin/sh
# Every plugin in a folder exports exactly one dynamic symbol, its
# descriptor entry point ferry_plugin_v1 (plugins are built with
# -fvisibility=hidden; a leaked symbol could interpose on another plugin's).
#
# usage: test_exports.sh DIR [NAME...]   NAMEs: plugins that must be in DIR
set -u
dir=$1
shift
status=0
for name in "$@"; do
    if [ ! -f "$dir/$name.so" ]; then
        echo "FAIL $dir/$name.so: missing"
        status=1
    fi
done
found=0
for so in "$dir"/*.so; do
    [ -f "$so" ] || continue
    found=$((found + 1))
    # Symbols the linker itself may define in every object are not exports
    # of the plugin's code.
    syms=$(nm -D --defined-only "$so" | awk '{print $NF}' |
        grep -v -x -e _init -e _fini -e _edata -e _end -e __bss_start | sort)
    if [ "$syms" != "ferry_plugin_v1" ]; then
        echo "FAIL $so: exports $(echo $syms | tr '\n' ' ')(expected only ferry_plugin_v1)"
        status=1
    else
        echo "ok   $so"
    fi
done
if [ "$found" -eq 0 ]; then
    echo "FAIL $dir: no plugins found"
    status=1
fi
exit $status
