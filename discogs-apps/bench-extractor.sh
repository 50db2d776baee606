#!/usr/bin/env bash
# Extractor benchmark (issue 5): a generated releases dump (.xml.gz) from disk into RabbitMQ,
# persistent and confirmed (one quorum queue bound, as a consumer would have it), then the same
# file again with --force-reprocess: nothing changed, nothing published. Prints the extractor's
# records/s (its "File complete" line) and peak RSS (GNU time) for both runs.
#
#   discogs-apps/bench-extractor.sh [FILE]
#
# FILE defaults to $CARGO_TARGET_DIR/bench-data/gen_releases_1.2GB.xml.gz (1.2 GB of XML,
# 407,309 releases), generated with `generate_dump releases 1.2GB` (seed 42) when missing.
# Needs the local services (scripts/services up). Queues and exchanges are removed afterwards.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
eval "$(scripts/services env)"
TARGET=${CARGO_TARGET_DIR:-target}
FILE=${1:-$TARGET/bench-data/gen_releases_1.2GB.xml.gz}
if [[ ! -f $FILE ]]; then
	mkdir -p "$(dirname "$FILE")"
	cargo run --release -p discogs-benches --bin generate_dump -- releases 1.2GB "$FILE"
fi
cargo build --release -p discogs-apps --bin extractor
BIN=$TARGET/release/extractor
ROOT=$(mktemp -d)
PREFIX=bench-$$
cleanup() {
	for q in "$PREFIX-bench-releases" "$PREFIX-bench-releases.dlq"; do
		curl -fsS -u "$RABBITMQ_USERNAME:$RABBITMQ_PASSWORD" -X DELETE "$RABBITMQ_MANAGEMENT_URL/api/queues/%2F/$q" || true
	done
	for x in "$PREFIX-bench-releases.dlx" "$PREFIX-artists" "$PREFIX-labels" "$PREFIX-masters" "$PREFIX-releases"; do
		curl -fsS -u "$RABBITMQ_USERNAME:$RABBITMQ_PASSWORD" -X DELETE "$RABBITMQ_MANAGEMENT_URL/api/exchanges/%2F/$x" || true
	done
	rm -rf "$ROOT"
}
trap cleanup EXIT
run() {
	local label=$1
	shift
	echo "== $label (load: $(cut -d' ' -f1-3 /proc/loadavg))"
	/usr/bin/time -f "peak RSS %M KB, wall %e s" "$BIN" --input "$FILE" --discogs-root "$ROOT" \
		--exchange-prefix "$PREFIX" --consumers bench --health-port 0 "$@" 2>"$ROOT/$label.log" || {
		cat "$ROOT/$label.log"
		exit 1
	}
	grep -o 'File complete.*' "$ROOT/$label.log" | grep -o 'records=[0-9]*\|published_this_run=[0-9]*\|seconds="[0-9.]*"\|records_per_second=[0-9.]*' | tr '\n' ' '
	echo
	tail -1 "$ROOT/$label.log"
}
run first
run unchanged --force-reprocess
