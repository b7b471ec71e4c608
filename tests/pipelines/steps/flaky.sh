# Fails the first time (leaving its marker), succeeds the next.
if [ -e "$1" ]; then echo second-attempt; exit 0; fi
: >"$1"
echo first-attempt
exit 1
