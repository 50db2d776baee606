#!/usr/bin/env bash
# Fills fuzz/corpus/<target>/ with seeds from the shared test fixtures (small files only).
# The corpus is git-ignored (/fuzz/corpus/ in the root .gitignore): never commit it.
#
#   bash fuzz/seed-corpus.sh [FIXTURES_DIR] [MAX_BYTES]
#
# FIXTURES_DIR defaults to ../shared/fixtures beside the repository; MAX_BYTES (default
# 65536) bounds the size of a seed, so libFuzzer's -max_len stays small and runs fast.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
fixtures="${1:-$here/../../shared/fixtures}"
max_bytes="${2:-65536}"
if [ ! -d "$fixtures" ]; then
    echo "no fixtures at $fixtures; the targets also start from an empty corpus" >&2
    exit 0
fi
corpus="$here/corpus"
mkdir -p "$corpus/dump_reader" "$corpus/dump_gzip" "$corpus/record"

n=0
while IFS= read -r -d '' f; do
    name="$(basename "$(dirname "$f")")__$(basename "$f")"
    case "$f" in
        *.xml)
            cp "$f" "$corpus/dump_reader/$name"
            cp "$f" "$corpus/dump_gzip/$name"
            # One seed per record for the `record` target (the first 50 of each file).
            perl -0777 -e '
                my ($src, $dir, $name) = @ARGV;
                open(my $in, "<", $src) or die; local $/; my $xml = <$in>;
                my $i = 0;
                while ($xml =~ /(<(artist|label|master|release)[ >].*?<\/\2>)/sg) {
                    last if ++$i > 50;
                    open(my $out, ">", "$dir/$name.$i") or die; print $out $1; close $out;
                }' "$f" "$corpus/record" "$name"
            ;;
        *.xml.gz)
            # Compressed dumps exercise the gzip path of dump_reader as they are.
            cp "$f" "$corpus/dump_reader/$name"
            ;;
    esac
    n=$((n + 1))
done < <(find "$fixtures" -type f \( -name '*.xml' -o -name '*.xml.gz' \) -size -"$((max_bytes + 1))"c -print0)

echo "seeded from $n fixture files:"
for t in dump_reader dump_gzip record; do
    echo "  corpus/$t: $(find "$corpus/$t" -type f | wc -l) files"
done
