# bench/ingest/soak.sh — the soak of bench/ingest/run (--soak MINUTES; bench/soak/run), sourced by
# it once the server runs and is warm: it uses run's loadgen, field, new_store, count_rows, sql,
# PE_PORT, PE_PID, WORK, DURATION and STRICT, and sets SOAK_STATUS.
#
# 1. The peak rate of single-event requests (the SDK's usual request; visits of 20 events, as the
#    SDK sends a visit a few events at a time: a visit per request would make 20 times as many
#    sessions as real traffic has, for the roll-up and the dashboard to count), closed loop,
#    --duration s.
# 2. SOAK one-minute slices at half that rate (open loop: latency counted from when each request
#    was due), one store, with two readers beside them for the whole soak: OFREP evaluations of
#    an experiment flag (10 a second) and the dashboard's overview (once a second), each request
#    timed by curl.
# 3. Per minute: ingest req/s, p50, p99, errors; the readers' p99 and failures; the server's RSS
#    (VmRSS) and open descriptors.
#    (PE_SOAK_SLICE_S shortens the "minutes", to try the bench itself quickly.)
# 4. Verdict: RSS growth < TARGET_SOAK_RSS_GROWTH % and descriptors flat (no more than 8 more),
#    first minute against the last; the ingest p99 flat: the median of the last five minutes'
#    p99s within 25 % (or 5 ms) of the first five's; no error; every acknowledged event stored and
#    no more than were sent.

new_store bench-soak-peak >"$WORK/soak-peak.store"
new_store bench-soak >"$WORK/soak.store"
SOAK_STORE=$(jq -r .storeId "$WORK/soak.store")
SOAK_SK=$(jq -r .secretKey "$WORK/soak.store")
SOAK_PK=$(jq -r .publishableKey "$WORK/soak.store")
SOAK_URL=http://127.0.0.1:$PE_PORT

pe_log "soak: the peak rate of single-event requests, ${DURATION}s"
SOAK_PEAK=$(loadgen "$WORK/soak-peak.store" --duration "$DURATION" --events-per-request 1 \
    --events-per-session 20)
SOAK_RATE=$(awk -v r="$(field "$SOAK_PEAK" requests_per_s)" 'BEGIN { printf "%.1f", r / 2 }')

curl -fsS -o /dev/null -X POST "$SOAK_URL/api/v1/stores/$SOAK_STORE/flags" \
    -H "Authorization: Bearer $SOAK_SK" -H 'Content-Type: application/json' \
    -d '{"key":"soak-banner","kind":"experiment","enabled":true,"rolloutPercentage":100,
         "variants":[{"key":"control","value":false,"weight":50},
                     {"key":"treatment","value":true,"weight":50}]}' ||
    pe_die "soak: cannot create the flag"

# A reader: one request every $2 seconds until the server is gone, each as "ms status seconds".
soak_reader() { # name interval curl-args…
    local name=$1 interval=$2
    shift 2
    while kill -0 "$PE_PID" 2>/dev/null; do
        printf '%s %s\n' "$(date +%s%3N)" \
            "$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 10 "$@")" \
            >>"$WORK/soak-$name.txt"
        sleep "$interval"
    done
}
: >"$WORK/soak-ofrep.txt"
: >"$WORK/soak-overview.txt"
soak_reader ofrep 0.1 -X POST "$SOAK_URL/ofrep/v1/evaluate/flags/soak-banner" \
    -H "Authorization: Bearer $SOAK_PK" -H 'Content-Type: application/json' \
    --data-binary '{"context":{"targetingKey":"visitor-42","device":"mobile"}}' &
SOAK_READERS=($!)
soak_reader overview 1 "$SOAK_URL/api/v1/stores/$SOAK_STORE/metrics/overview" \
    -H "Authorization: Bearer $SOAK_SK" &
SOAK_READERS+=($!)

# "p99_ms failures" of a reader's requests in [from, to) ms (a failure: not a 200).
soak_reader_p99() { # name from to
    local sel bad p99
    sel=$(awk -v a="$2" -v b="$3" '$1 >= a && $1 < b' "$WORK/soak-$1.txt")
    bad=$(awk '$2 != 200' <<<"$sel" | grep -c . || true)
    p99=$(awk 'NF { print $3 * 1000 }' <<<"$sel" | sort -n |
        awk '{ v[NR] = $1 } END { i = int(NR * 0.99); if (i < 1) i = NR; printf "%.1f", NR ? v[i] : 0 }')
    printf '%s %s' "$p99" "$bad"
}
soak_rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$PE_PID/status"; }
soak_fds() { find "/proc/$PE_PID/fd" -mindepth 1 -maxdepth 1 | wc -l; }

pe_log "soak: $SOAK minutes at $SOAK_RATE single-event requests/s (half the peak), readers beside"
SOAK_LINES=()
SOAK_P99=()
SOAK_RSS=()
SOAK_FDS=()
SOAK_ERRORS=0
SOAK_ACKED=0
SOAK_SENT=0
for ((m = 1; m <= SOAK; m++)); do
    from=$(date +%s%3N)
    slice=$(loadgen "$WORK/soak.store" --duration "${PE_SOAK_SLICE_S:-60}" --events-per-request 1 \
        --events-per-session 20 --rate "$SOAK_RATE")
    to=$(date +%s%3N)
    echo "$slice" >>"$WORK/soak-slices.json"
    read -r ofrep_p99 ofrep_bad <<<"$(soak_reader_p99 ofrep "$from" "$to")"
    read -r overview_p99 overview_bad <<<"$(soak_reader_p99 overview "$from" "$to")"
    rss=$(soak_rss_kb)
    fds=$(soak_fds)
    SOAK_P99+=("$(field "$slice" p99_ms)")
    SOAK_RSS+=("$rss")
    SOAK_FDS+=("$fds")
    SOAK_ERRORS=$((SOAK_ERRORS + $(field "$slice" errors) + ofrep_bad + overview_bad))
    SOAK_ACKED=$((SOAK_ACKED + $(field "$slice" events_acked)))
    SOAK_SENT=$((SOAK_SENT + $(field "$slice" events_sent)))
    SOAK_LINES+=("$(printf '%6s %8s %7s %7s %6s %10s %12s %8.1f %5s' "$m" \
        "$(field "$slice" requests_per_s)" "$(field "$slice" p50_ms)" "$(field "$slice" p99_ms)" \
        "$(field "$slice" errors)" "$ofrep_p99/$ofrep_bad" "$overview_p99/$overview_bad" \
        "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" "$fds")")
    printf '%s\n' "${SOAK_LINES[-1]}" >&2
done
kill "${SOAK_READERS[@]}" 2>/dev/null || true
wait "${SOAK_READERS[@]}" 2>/dev/null || true
SOAK_STORED=$(count_rows "$SOAK_STORE")

# --- report ------------------------------------------------------------------------------------
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
P99_FIRST=$(median "${SOAK_P99[@]:0:5}")
P99_LAST=$(median "${SOAK_P99[@]: -5}")
RSS_GROWTH=$(awk -v a="${SOAK_RSS[0]}" -v b="${SOAK_RSS[-1]}" 'BEGIN { printf "%.1f", (b - a) * 100 / a }')
printf '\nprofit-engine %s; soak of %s minutes, PE_JOBS=%s, %s CPUs; peak %s single-event requests/s, soak at %s/s\n\n' \
    "$("$BIN" --version 2>/dev/null | head -n1)" "$SOAK" "$JOBS" "$(nproc)" \
    "$(field "$SOAK_PEAK" requests_per_s)" "$SOAK_RATE"
printf '%6s %8s %7s %7s %6s %10s %12s %8s %5s\n' minute req/s p50_ms p99_ms errors \
    "ofrep p99/bad" "overview p99/bad" "RSS MB" fds
printf '%s\n' "${SOAK_LINES[@]}"
printf '\nevents sent %s, acknowledged %s, stored %s\n' "$SOAK_SENT" "$SOAK_ACKED" "$SOAK_STORED"
printf 'RSS: first minute %.1f MB, last %.1f MB: %s %% (target < %s %%)\n' \
    "$(awk -v k="${SOAK_RSS[0]}" 'BEGIN { print k / 1024 }')" \
    "$(awk -v k="${SOAK_RSS[-1]}" 'BEGIN { print k / 1024 }')" "$RSS_GROWTH" "$TARGET_SOAK_RSS_GROWTH"
printf 'open descriptors: first minute %s, last %s\n' "${SOAK_FDS[0]}" "${SOAK_FDS[-1]}"
printf 'ingest p99, median of the minutes: first five %s ms, last five %s ms\n' "$P99_FIRST" "$P99_LAST"

SOAK_FAIL=()
awk -v g="$RSS_GROWTH" -v t="$TARGET_SOAK_RSS_GROWTH" 'BEGIN { exit !(g < t) }' ||
    SOAK_FAIL+=("RSS grew $RSS_GROWTH % (target < $TARGET_SOAK_RSS_GROWTH %)")
((SOAK_FDS[-1] <= SOAK_FDS[0] + 8)) ||
    SOAK_FAIL+=("open descriptors went from ${SOAK_FDS[0]} to ${SOAK_FDS[-1]}")
awk -v a="$P99_FIRST" -v b="$P99_LAST" 'BEGIN { exit !(b <= a * 1.25 || b <= a + 5) }' ||
    SOAK_FAIL+=("ingest p99 rose from $P99_FIRST ms to $P99_LAST ms")
((SOAK_ERRORS == 0)) || SOAK_FAIL+=("$SOAK_ERRORS errors (ingest, OFREP, overview)")
# Every acknowledged event stored; more may be, from requests the load generator gave up on after
# the server committed them (an SDK resends those with the same eventIds); never more than sent.
((SOAK_STORED >= SOAK_ACKED && SOAK_STORED <= SOAK_SENT)) ||
    SOAK_FAIL+=("$SOAK_ACKED events acknowledged and $SOAK_SENT sent, but $SOAK_STORED stored")
SOAK_STATUS=0
if ((${#SOAK_FAIL[@]} == 0)); then
    printf '\nverdict: PASS\n'
else
    printf '\nverdict: FAIL\n'
    printf '  - %s\n' "${SOAK_FAIL[@]}"
    ((STRICT)) && SOAK_STATUS=1
fi
