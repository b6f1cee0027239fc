#!/usr/bin/env bash
# The demo, from a fresh Debian 12 machine: installs dependencies, builds the
# release binary (build/earshot), builds a catalog from Debian's Wesnoth music
# and identifies excerpts of it (clean, re-encoded, noisy, sped up, talked
# over) and a non-catalogued track, follows a simulated live stream, and then
# runs the whole system on this machine: nginx-rtmp + `earshot serve`, a
# channel, a stream pushed with ffmpeg that the `block` rule stops
# (scripts/demo-live.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh release earshot

EARSHOT="$PWD/build/earshot"
MUSIC=/usr/share/games/wesnoth/1.16/data/core/music
DEMO="$PWD/build/demo"
rm -rf "$DEMO"
mkdir -p "$DEMO/queries"
ff() { ffmpeg -nostdin -loglevel error -y "$@"; }

echo
echo "== 1. Catalog: six Wesnoth tracks with metadata and business rules"
cat > "$DEMO/manifest.tsv" <<TSV
path	title	artist	rights_holder	isrc	rule	tags
$MUSIC/battle.ogg	Battle	Wesnoth composers	Wesnoth Project	XX-WES-16-00001	block	genre=orchestral
$MUSIC/elvish-theme.ogg	Elvish Theme	Wesnoth composers	Wesnoth Project	XX-WES-16-00002	mute	genre=orchestral
$MUSIC/knalgan_theme.ogg	Knalgan Theme	Wesnoth composers	Wesnoth Project	XX-WES-16-00003	allow	
$MUSIC/loyalists.ogg	Loyalists	Wesnoth composers	Wesnoth Project	XX-WES-16-00004	track	
$MUSIC/northerners.ogg	Northerners	Wesnoth composers	Wesnoth Project	XX-WES-16-00005	track	
$MUSIC/wanderer.ogg	Wanderer	Wesnoth composers	Wesnoth Project	XX-WES-16-00006	block	
TSV
"$EARSHOT" --catalog "$DEMO/catalog" catalog add --manifest "$DEMO/manifest.tsv"
"$EARSHOT" --catalog "$DEMO/catalog" catalog list
"$EARSHOT" --catalog "$DEMO/catalog" catalog stats

echo
echo "== 2. Queries: 10-second excerpts as a live stream would deliver them"
ff -ss 62 -t 10 -i "$MUSIC/battle.ogg" "$DEMO/queries/battle-clean.flac"
ff -ss 30 -t 10 -i "$MUSIC/elvish-theme.ogg" -c:a libmp3lame -b:a 64k "$DEMO/queries/elvish-mp3-64k.mp3"
ff -ss 45 -t 10 -i "$MUSIC/knalgan_theme.ogg" -f lavfi -t 10 -i "anoisesrc=color=pink:amplitude=0.08:seed=7" \
   -filter_complex "[0:a]aformat=channel_layouts=mono[a];[a][1:a]amix=inputs=2:normalize=0" "$DEMO/queries/knalgan-noisy.wav"
ff -ss 20 -t 10 -i "$MUSIC/loyalists.ogg" -af "asetrate=44100*1.04,aresample=44100" "$DEMO/queries/loyalists-sped-up-4pc.m4a"
# A "voice" over quiet music: speech-band noise bursts at +8 dB over the music.
ff -ss 50 -t 10 -i "$MUSIC/wanderer.ogg" -f lavfi -t 10 -i "anoisesrc=color=brown:amplitude=0.5:seed=3" \
   -filter_complex "[1:a]bandpass=f=700:width_type=o:w=2,volume='if(lt(mod(t,1.6),1.0),1,0.05)':eval=frame[v];[0:a]aformat=channel_layouts=mono,volume=0.4[m];[m][v]amix=inputs=2:normalize=0" \
   "$DEMO/queries/wanderer-talked-over.wav"
ff -ss 30 -t 10 -i "$MUSIC/the_city_falls.ogg" "$DEMO/queries/not-in-catalog.flac"
"$EARSHOT" --catalog "$DEMO/catalog" identify "$DEMO"/queries/* > "$DEMO/responses.jsonl" || true
python3 - "$DEMO/responses.jsonl" <<'PY'
import json, os, sys
print(f"{'query':32} {'status':12} {'title':16} {'rule':6} {'at ref':>8} {'score':>7}")
for line in open(sys.argv[1]):
    r = json.loads(line)
    m = r["matches"][0] if r.get("matches") else None
    print(f"{os.path.basename(r['input']):32} {r['status']:12} "
          + (f"{m['metadata']['title']:16} {m['rule']:6} {m['time_in_reference_s']:8.1f} {m['score']:7.1f}" if m else ""))
PY
echo "one full identification response:"
head -1 "$DEMO/responses.jsonl" | python3 -m json.tool

echo
echo "== 3. A simulated live stream: talk, catalogued music, non-catalogued music"
ff -f lavfi -t 12 -i "anoisesrc=color=brown:amplitude=0.2:seed=5" -ss 100 -t 30 -i "$MUSIC/northerners.ogg" \
   -ss 10 -t 20 -i "$MUSIC/the_city_falls.ogg" \
   -filter_complex "[0:a]aformat=sample_rates=44100:channel_layouts=stereo[a];[1:a]aformat=sample_rates=44100:channel_layouts=stereo[b];[2:a]aformat=sample_rates=44100:channel_layouts=stereo[c];[a][b][c]concat=n=3:v=0:a=1" \
   "$DEMO/stream.flac"
echo "(truth: 0-12 s talk, 12-42 s Northerners from 100 s, 42-62 s non-catalogued music)"
"$EARSHOT" --catalog "$DEMO/catalog" identify --follow "$DEMO/stream.flac" > "$DEMO/events.jsonl"
python3 - "$DEMO/events.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    m = e["match"]
    print("t=%6.1fs  %-8s match %d: %s (%s) from %.1fs for %.1fs, reference at %.1fs, score %.1f" % (
        e["reported_at_s"], e["event"], e["match_id"], m["metadata"]["title"], m["rule"],
        m["time_in_input_s"], m["duration_s"], m["time_in_reference_s"], m["score"]))
PY

echo
echo "== 4. Live: nginx-rtmp + earshot serve; a stream with Battle (rule block) under a voice"
bash scripts/demo-live.sh "$EARSHOT" "$DEMO/catalog" "$DEMO/live"

echo
echo "demo done: catalog in $DEMO/catalog, release binary build/earshot (try: build/earshot --help)"
