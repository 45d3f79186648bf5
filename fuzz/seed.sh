#!/usr/bin/env bash
# Writes the fuzzers' seed corpus under fuzz/seeds/ from real traffic: a real member's control
# frames (a Rust test that joins one as a mesh neighbour), MPEG-TS, Ogg Opus and IVF from ffmpeg,
# DNS queries as dig sends them. Needs ffmpeg and dig (Debian: ffmpeg, dnsutils).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test -p node --test fuzz_seeds -- --ignored
mkdir -p fuzz/seeds/mpegts fuzz/seeds/dns_query fuzz/seeds/http_query
ffmpeg -loglevel error -y -f lavfi -i testsrc=size=96x64:rate=10 -f lavfi -i sine=duration=1 \
  -t 1 -c:v libx264 -g 5 -pix_fmt yuv420p -c:a aac -f mpegts fuzz/seeds/mpegts/testsrc.ts
head -c 9400 fuzz/seeds/mpegts/testsrc.ts > fuzz/seeds/mpegts/head.ts
# Files a member sends: a byte choosing the pieces the reader gets, then ffmpeg's Ogg Opus / IVF.
mkdir -p fuzz/seeds/media_files
media=$(mktemp -d)
ffmpeg -loglevel error -y -f lavfi -i sine=frequency=440:sample_rate=48000 -t 0.3 \
  -c:a libopus -b:a 24k -f ogg "$media/sine.ogg"
ffmpeg -loglevel error -y -f lavfi -i testsrc=size=64x48:rate=10 -t 0.3 -c:v libvpx \
  -f ivf "$media/testsrc.ivf"
ffmpeg -loglevel error -y -f lavfi -i testsrc=size=64x48:rate=10 -f lavfi -i sine=duration=1 \
  -t 0.3 -c:v libx264 -pix_fmt yuv420p -bf 0 -g 2 -c:a libopus -b:a 24k -f mpegts \
  "$media/talk.ts"
{ printf '\x04'; cat "$media/sine.ogg"; } > fuzz/seeds/media_files/sine.ogg
{ printf '\x0b'; cat "$media/talk.ts"; } > fuzz/seeds/media_files/talk.ts
{ printf '\x02'; cat "$media/testsrc.ivf"; } > fuzz/seeds/media_files/testsrc.ivf
rm -r "$media"
# dig's queries, caught by a UDP socket that answers nothing.
python3 - <<'PY'
import socket, subprocess
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
s.settimeout(3)
for i, args in enumerate([["talk.esm.local", "A"], ["talk.esm.local", "AAAA"],
                          ["tv.esm.local", "A", "+noedns"], ["example.org", "TXT"]]):
    p = subprocess.Popen(["dig", "@127.0.0.1", "-p", str(port), *args, "+tries=1", "+time=1"],
                         stdout=subprocess.DEVNULL)
    data, _ = s.recvfrom(4096)
    open(f"fuzz/seeds/dns_query/dig{i}", "wb").write(data)
    p.kill()
PY
printf 'start' > fuzz/seeds/http_query/start
printf '123456789' > fuzz/seeds/http_query/byte
printf 'talk%%esm.local' > fuzz/seeds/http_query/name
echo "seeds: $(find fuzz/seeds -type f | wc -l) files"
