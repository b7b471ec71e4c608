i=0
while [ "$i" -lt "$1" ]; do i=$((i + 1)); echo "line-$i"; sleep 1; done
