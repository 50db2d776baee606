#!/usr/bin/env bash
# The whole-file parser benchmark behind the figures in the README.
#
#   benches/run-parse-bench.sh [RUNS]
#
# Builds the release binaries, writes the inputs once into target/bench-data (generated
# dumps with the real average record size, and the real excerpts from ../shared/fixtures
# repeated), then runs examples/parse_dump on each, single-threaded and with two workers,
# RUNS times (default 3), and prints the best MB/s, records/s and the peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
data=target/bench-data
mkdir -p "$data"

cargo build --release -q -p discogs-benches --bin generate_dump --bin peer_disco_quick
cargo build --release -q -p examples --example parse_dump
gen=target/release/generate_dump
parse=target/release/examples/parse_dump
peer=target/release/peer_disco_quick

make() { # make FILE KIND SIZE: generate FILE unless it exists
    [ -s "$1" ] || "$gen" "$2" "$3" "$1"
}
make "$data/gen_releases_1.2GB.xml" releases 1200MB
make "$data/gen_releases_1.2GB.xml.gz" releases 1200MB
make "$data/gen_artists_1GB.xml" artists 1000MB
make "$data/gen_releases_2.2GB.xml.gz" releases 2200MB

fixtures=../shared/fixtures/nicolascalo__discogs_lakehouse_graph_data_platform
repeat() { # repeat OUT SOURCE.gz TIMES ROOT: the records of SOURCE repeated TIMES inside ROOT
    [ -s "$1" ] && return
    python3 - "$@" <<'PY'
import gzip, sys
out, src, times, root = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
xml = gzip.open(src).read()
body = xml[xml.index(b"<" + root[:-1].encode()):xml.rindex(b"</" + root.encode() + b">")]
with open(out, "wb") as f:
    f.write(b"<" + root.encode() + b">\n")
    for _ in range(times):
        f.write(body)
    f.write(b"</" + root.encode() + b">\n")
PY
}
if [ -d "$fixtures" ]; then
    repeat "$data/real_releases_x50.xml" "$fixtures/discogs_20251101_releases_sample_100000.xml.gz" 50 releases
    [ -s "$data/real_releases_x50.xml.gz" ] || gzip -6 -k "$data/real_releases_x50.xml"
    repeat "$data/real_masters_x40.xml" "$fixtures/derived_discogs_20260101_masters_sample_300000.wellformed.xml.gz" 40 masters
else
    echo "note: ../shared/fixtures not found, skipping the real-excerpt inputs" >&2
fi

best() { # best MODE FILE: best of $runs runs
    local mode=$1 file=$2 line best_line="" best_rate=0 rss=0
    for _ in $(seq "$runs"); do
        case $mode in
            parallel) line=$(/usr/bin/time -f "RSS %M" "$parse" --parallel 2 "$file" 2>&1) ;;
            single) line=$(/usr/bin/time -f "RSS %M" "$parse" "$file" 2>&1) ;;
            disco-quick)
                local size
                if [[ $file == *.gz ]]; then size=$(gzip -dc "$file" | wc -c); else size=$(stat -c %s "$file"); fi
                line=$(/usr/bin/time -f "RSS %M" "$peer" "$file" "$size" 2>&1) ;;
        esac
        rate=$(grep -o '[0-9]* MB/s' <<<"$line" | cut -d' ' -f1)
        r=$(grep -o 'RSS [0-9]*' <<<"$line" | cut -d' ' -f2)
        if [ "$rate" -gt "$best_rate" ]; then best_rate=$rate; best_line=$line; fi
        if [ "$r" -gt "$rss" ]; then rss=$r; fi
    done
    local recs
    recs=$(grep -o '[0-9]* records/s' <<<"$best_line")
    printf '| %-32s | %-8s | %8s MB/s | %16s | %6.1f MB |\n' "$(basename "$file")" "$mode" "$best_rate" "$recs" "$(echo "$rss/1024" | bc -l)"
}

python3 -c "
import hashlib, time
d = b'x' * (200 << 20)
t = time.time(); hashlib.sha256(d).digest()
print('machine check: SHA-256 (OpenSSL, one core) %.0f MB/s' % (len(d) / (time.time() - t) / 1e6))"
echo
echo "| input | reader | XML MB/s | records/s | peak RSS |"
echo "|---|---|---:|---:|---:|"
for f in "$data"/gen_releases_1.2GB.xml "$data"/gen_artists_1GB.xml "$data"/real_releases_x50.xml "$data"/real_masters_x40.xml; do
    [ -s "$f" ] || continue
    best single "$f"
    best parallel "$f"
    best disco-quick "$f"
done
for f in "$data"/gen_releases_1.2GB.xml.gz "$data"/real_releases_x50.xml.gz "$data"/gen_releases_2.2GB.xml.gz; do
    [ -s "$f" ] || continue
    best single "$f"
    best parallel "$f"
done
