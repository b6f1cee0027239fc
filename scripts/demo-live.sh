#!/usr/bin/env bash
# The live part of the demo (scripts/demo.sh runs it after the catalog demo):
# nginx-rtmp and `earshot serve` on this machine (127.0.0.1 only), a channel
# created over the API, a stream pushed with ffmpeg in real time carrying a
# catalogued `block` track under a synthetic voice. The console prints the
# control plane's events as they happen, and the stream is stopped by the rule.
#
# Usage: scripts/demo-live.sh EARSHOT_BINARY CATALOG_DIR WORK_DIR
set -euo pipefail
EARSHOT="$1"
CATALOG="$2"
WORK="$3"
MUSIC=/usr/share/games/wesnoth/1.16/data/core/music

rm -rf "$WORK"
mkdir -p "$WORK"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
API_PORT=$(free_port)
RTMP_PORT=$(free_port)
HTTP_PORT=$(free_port)

cat > "$WORK/earshot.toml" <<TOML
[server]
listen = "127.0.0.1:$API_PORT"
data_dir = "$WORK/data"
catalog_dir = "$CATALOG"
[workers]
workers = 2
[scan]
stall_timeout_s = 4
reconnects = 1
[ingest]
rtmp_url = "rtmp://127.0.0.1:$RTMP_PORT"
rtmp_listen = "127.0.0.1"
control_url = "http://127.0.0.1:$HTTP_PORT/control"
playback_url = "http://127.0.0.1:$HTTP_PORT/hls"
hls_dir = "$WORK/hls"
[rules]
block_action = "stop"
TOML
echo "config: $WORK/earshot.toml (every key: docs/earshot.toml)"

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

# nginx with the config earshot generates for these settings.
mkdir -p "$WORK/nginx"
"$EARSHOT" nginx-config --config "$WORK/earshot.toml" --run-dir "$WORK/nginx" > "$WORK/nginx/nginx.conf"
nginx -p "$WORK/nginx/" -e "$WORK/nginx/logs/error.log" -c "$WORK/nginx/nginx.conf" &
pids+=($!)
echo "nginx-rtmp: rtmp://127.0.0.1:$RTMP_PORT/ingest/<stream key>, HLS on http://127.0.0.1:$HTTP_PORT/hls/"

"$EARSHOT" serve --config "$WORK/earshot.toml" 2> "$WORK/serve.log" &
pids+=($!)
for _ in $(seq 1 100); do
  python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$API_PORT/healthz', timeout=1)" \
    2>/dev/null && break
  sleep 0.1
done
echo "earshot serve: http://127.0.0.1:$API_PORT (log: $WORK/serve.log)"
API_KEY=$("$EARSHOT" admin create-key --name demo --config "$WORK/earshot.toml" | head -1)

# The streamer's audio: Battle (rule block) under a voice.
espeak-ng -s 150 -w "$WORK/voice.wav" \
  "hello everyone and welcome back to the stream. today we try the hard level again, wish me luck. \
   let me put some music on while we wait for the lobby to fill up." 2>/dev/null
ffmpeg -nostdin -loglevel error -y -ss 40 -t 40 -i "$MUSIC/battle.ogg" -i "$WORK/voice.wav" \
  -filter_complex "[0:a]volume=0.6[m];[1:a]aresample=44100,adelay=1000|1000,volume=1.6[v];[m][v]amix=inputs=2:duration=first:normalize=0" \
  -ar 44100 -ac 2 "$WORK/stream.wav"

python3 - "$API_PORT" "$API_KEY" "$RTMP_PORT" "$WORK" <<'PY'
import json, subprocess, sys, threading, time, urllib.request

port, api_key, rtmp_port, work = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
base = f"http://127.0.0.1:{port}"

def call(method, path, body=None):
    req = urllib.request.Request(base + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {api_key}",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")

created = call("POST", "/v1/channels", {"name": "speedrun-night", "tags": {"team": "demo"}})
channel = created["channel"]["id"]
key = created["stream_key"]["value"]
print(f"channel {channel} created; its stream key (shown once, stored hashed): {key[:5]}…")

t0 = time.time()
def show(e):
    d = e.get("detail", {})
    what = ""
    if e["event_name"] == "Identification":
        t = d.get("track", {})
        what = f"{d.get('status')}: '{t.get('title')}' ({t.get('rights_holder')}) rule {d.get('rule')}, " \
               f"at {d.get('stream_offset_s', 0):.1f} s of the stream, reference at {d.get('reference_offset_s', 0):.1f} s, score {d.get('score', 0):.1f}"
    elif e["event_name"] == "Rule Applied":
        what = f"{d.get('action')}: {d.get('reason')}"
    elif "reason" in d:
        what = d["reason"]
    print(f"  +{time.time() - t0:5.1f}s  #{e['seq']:<3} {e['event_name']:15} {what}", flush=True)

# Publish like an encoder: real time, AAC in FLV.
# (ffmpeg's messages name the URL, and so the key: they go to a file.)
pub = subprocess.Popen(["ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-i", f"{work}/stream.wav",
                        "-c:a", "aac", "-b:a", "128k", "-f", "flv",
                        f"rtmp://127.0.0.1:{rtmp_port}/ingest/{key}"],
                       stderr=open(f"{work}/ffmpeg.log", "w"))
print(f"ffmpeg publishes 40 s of audio to the ingest; events as they happen:")
cursor, stream_id, done = 0, None, False
deadline = time.time() + 90
while time.time() < deadline and not done:
    for e in call("GET", f"/v1/events?after={cursor}&limit=100")["events"]:
        cursor = e["seq"]
        if e.get("channel_id") != channel:
            continue
        show(e)
        stream_id = stream_id or e.get("stream_id")
        if e["event_name"] == "Session Ended":
            done = True
    time.sleep(0.2)
try:
    code = pub.wait(timeout=15)
    print(f"the publisher was disconnected (ffmpeg exited {code}) "
          f"{time.time() - t0:.1f} s into its 40 s of audio")
except subprocess.TimeoutExpired:
    pub.kill()
    print("the publisher was not disconnected", file=sys.stderr)
    sys.exit(1)
if not done:
    print("the stream was not stopped in time", file=sys.stderr)
    sys.exit(1)
s = call("GET", f"/v1/sessions/{stream_id}")
print(f"stream session {stream_id}: state {s['state']}, end reason: {s.get('end_reason')}")
ids = call("GET", f"/v1/identifications?channel_id={channel}")["identifications"]
for i in ids:
    print(f"identification: {i['title']} rule {i['rule']} from {i['stream_offset_s']:.1f} s for {i['duration_s']:.1f} s")
PY
echo "responses on disk: $WORK/data/results/"
