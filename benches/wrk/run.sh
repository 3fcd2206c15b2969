#!/usr/bin/env bash
# Cross-process load figures: `dwsim serve` with N generated Dataverse accounts, service
# protection off, and wrk (one thread, 8 connections by default) on the same machine:
# GET of the whole record, GET with $select=name, and create. Prints a Markdown table.
#
#   benches/wrk/run.sh [ACCOUNTS=100000] [SECONDS=10]
#
# Needs wrk (apt install wrk), curl and jq; uses target/release/dwsim (built if missing).
# Environment: CONNECTIONS (8), THREADS (1), PORT_BASE (47300), DWSIM (the binary),
# RUNS (which of `get one select create` to run, all by default). `one` GETs one record over
# and over with wrk's own request (no Lua per request, so wrk takes less of the two cores).
set -euo pipefail
accounts=${1:-100000}
seconds=${2:-10}
connections=${CONNECTIONS:-8}
threads=${THREADS:-1}
port=${PORT_BASE:-47300}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dwsim=${DWSIM:-$root/target/release/dwsim}
for tool in wrk curl jq; do
  command -v $tool >/dev/null || { echo "run.sh needs $tool" >&2; exit 2; }
done
[ -x "$dwsim" ] || (cd "$root" && cargo build --release)

work=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir "$work/catalogue"
printf '{"fno": {"companies": []}, "dataverse": {"generate": {"accounts": %d}}}\n' "$accounts" \
  > "$work/catalogue/demo-data.json"
key=wrk-$$
"$dwsim" serve --catalogue "$work/catalogue" --port-base "$port" --admin-key "$key" \
  > "$work/serve.log" 2>&1 &
server=$!
lcs=https://127.0.0.1:$((port + 1))
for _ in $(seq 600); do
  curl -sk -o /dev/null -H "Authorization: Bearer $key" "$lcs/_dwsim/harness" && break
  kill -0 $server 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
  sleep 0.1
done
admin=(-fsSk -H "Authorization: Bearer $key")
harness=$(curl "${admin[@]}" "$lcs/_dwsim/harness")
dv=$(jq -r '.dataverse[0].url' <<<"$harness")
token=$(curl -sk "$(jq -r .token_endpoint_v2 <<<"$harness")" \
  -d grant_type=client_credentials \
  --data-urlencode "client_id=$(jq -r .client_id <<<"$harness")" \
  --data-urlencode "client_secret=$(jq -r .client_secret <<<"$harness")" \
  --data-urlencode "scope=$dv/.default" | jq -r .access_token)
curl "${admin[@]}" -X PUT -H "Content-Type: application/json" "$lcs/_dwsim/limits" -d '{"enabled": false}' >/dev/null
curl -sk -H "Authorization: Bearer $token" -H 'Prefer: odata.maxpagesize=2000' \
  "$dv/api/data/v9.2/accounts?\$select=accountid&\$top=2000" |
  jq -r '.value[].accountid' > "$work/ids.txt"
# The server's user + system CPU time so far, in clock ticks.
cpu() { awk '{print $14 + $15}' /proc/$server/stat; }
rss() { awk '/VmRSS/ {printf "%.0f MiB", $2 / 1024}' /proc/$server/status; }
echo "dwsim serve, $accounts accounts, wrk -t$threads -c$connections -d${seconds}s, $(nproc) cores"
echo "resident after start: $(rss)"
echo
echo "| request | requests | throughput | p50 | p99 | p99.9 | max | non-2xx | server CPU per request |"
echo "|---|---|---|---|---|---|---|---|---|"
runs=" ${RUNS:-get one select create} "
run() {
  local what=$1 name=$2 script=$3 suffix=${4:-}
  [[ $runs == *" $what "* ]] || return 0
  local line cpu0 cpu1
  cpu0=$(cpu)
  local target=$dv
  if [[ $what == one ]]; then
    # wrk's own request for one URL; report.lua only prints the figures.
    target="$dv/api/data/v9.2/accounts($(head -1 "$work/ids.txt"))"
    headers=(-H "Authorization: Bearer $token" -H "Accept: application/json"
      -H "OData-MaxVersion: 4.0" -H "OData-Version: 4.0")
  else
    headers=()
  fi
  line=$(TOKEN=$token IDS=$work/ids.txt PATH_SUFFIX=$suffix WRK_DIR=$here RUN=$$ \
    wrk -t"$threads" -c"$connections" -d"${seconds}s" "${headers[@]}" -s "$here/$script" "$target" |
    grep '^RESULT')
  cpu1=$(cpu)
  eval "${line#RESULT }"
  local per=$(( (cpu1 - cpu0) * 1000000 / $(getconf CLK_TCK) / requests ))
  echo "| $name | $requests | $rps req/s | $p50 ms | $p99 ms | $p999 ms | $max ms | $non2xx | $per µs |"
}
run get 'GET `accounts(<id>)` (whole record, 2,000 ids)' get.lua
run one 'GET `accounts(<id>)` (whole record, one id)' report.lua
run select 'GET `accounts(<id>)?$select=name`' get.lua '?$select=name'
run create 'create `POST accounts`' create.lua
echo
echo "resident after the runs: $(rss)"
