import json
def ref(n): return {"$ref": "#/components/schemas/"+n}
def err(desc): return {"description": desc, "content": {"application/json": {"schema": ref("Error")}}}
def ok(desc, schema=None, code="200"):
    r={"description": desc}
    if schema is not None: r["content"]={"application/json":{"schema":schema}}
    return r
def body(schema, required=True): return {"required": required, "content": {"application/json": {"schema": schema}}}
def qp(name, desc, schema=None, required=False):
    return {"name": name, "in": "query", "required": required, "description": desc, "schema": schema or {"type":"string"}}
def pp(name, desc): return {"name": name, "in": "path", "required": True, "description": desc, "schema": {"type":"string"}}
E401=err("missing or unknown API key"); E404=err("not found"); E400=err("malformed request"); E409=err("conflict with the current state")
time_s={"type":"string","description":"Unix milliseconds or ISO 8601 UTC, e.g. 2026-11-21T10:00:00Z"}
paths={}
def op(path, method, summary, responses, params=None, rb=None, tags=None, security=True, opid=None):
    o={"summary": summary, "operationId": opid, "responses": responses}
    if params: o["parameters"]=params
    if rb: o["requestBody"]=rb
    if tags: o["tags"]=tags
    if not security: o["security"]=[]
    paths.setdefault(path,{})[method]=o
ch=pp("channel_id","channel id (ch-...)")
op("/healthz","get","liveness: the process answers",{"200":ok("alive",{"type":"object"})},security=False,tags=["operations"],opid="healthz")
op("/readyz","get","readiness: state store and queue reachable",{"200":ok("ready",{"type":"object"}),"503":err("not ready")},security=False,tags=["operations"],opid="readyz")
op("/metrics","get","Prometheus metrics (text format 0.0.4)",{"200":{"description":"metrics","content":{"text/plain":{"schema":{"type":"string"}}}}},security=False,tags=["operations"],opid="metrics")
op("/v1/openapi.json","get","this document",{"200":ok("OpenAPI 3.0 document",{"type":"object"})},security=False,tags=["operations"],opid="openapi")
op("/v1/channels","post","create a channel; the answer carries its stream key, shown only once",
   {"201":ok("created",ref("ChannelCreated")),"400":E400,"401":E401},rb=body(ref("ChannelSpec")),tags=["channels"],opid="createChannel")
op("/v1/channels","get","list channels",{"200":ok("a page of channels",{"type":"object","required":["channels"],"properties":{"channels":{"type":"array","items":ref("Channel")},"next_token":{"type":"string"}}}),"400":E400,"401":E401},
   params=[qp("limit","at most this many (1..1000, default 100)",{"type":"integer"}),qp("next_token","from the previous page")],tags=["channels"],opid="listChannels")
op("/v1/channels/{channel_id}","get","get a channel",{"200":ok("the channel",ref("Channel")),"401":E401,"404":E404},params=[ch],tags=["channels"],opid="getChannel")
op("/v1/channels/{channel_id}","patch","update a channel (only the fields given)",{"200":ok("the channel",ref("Channel")),"400":E400,"401":E401,"404":E404},params=[ch],rb=body(ref("ChannelSpec")),tags=["channels"],opid="updateChannel")
op("/v1/channels/{channel_id}","delete","delete a channel (refused while it is live)",{"204":{"description":"deleted"},"401":E401,"404":E404,"409":E409},params=[ch],tags=["channels"],opid="deleteChannel")
op("/v1/channels/{channel_id}/stream-key/reset","post","replace the channel's stream key (the old one stops working at once)",{"200":ok("the new key, shown once",ref("StreamKey")),"401":E401,"404":E404},params=[ch],tags=["channels"],opid="resetStreamKey")
kid=pp("key_id","playback key id (pk-...)")
op("/v1/playback-keys","post","import a playback key pair's public key (P-384, PEM); viewers' tokens for private channels are ES384 JWTs signed with its private key",
   {"201":ok("imported",ref("PlaybackKey")),"400":E400,"401":E401,"409":err("this key is already imported, or playback.max_keys keys exist already")},
   rb=body({"type":"object","required":["public_key_pem"],"properties":{"name":{"type":"string","maxLength":128},"public_key_pem":{"type":"string"}}}),tags=["playback"],opid="importPlaybackKey")
op("/v1/playback-keys","get","list playback keys",{"200":ok("keys",{"type":"object","required":["playback_keys"],"properties":{"playback_keys":{"type":"array","items":ref("PlaybackKey")}}}),"401":E401},tags=["playback"],opid="listPlaybackKeys")
op("/v1/playback-keys/{key_id}","get","get a playback key",{"200":ok("the key",ref("PlaybackKey")),"401":E401,"404":E404},params=[kid],tags=["playback"],opid="getPlaybackKey")
op("/v1/playback-keys/{key_id}","delete","delete a playback key: every token signed with it is refused from now on",{"204":{"description":"deleted"},"401":E401,"404":E404},params=[kid],tags=["playback"],opid="deletePlaybackKey")
op("/v1/channels/{channel_id}/revoke-viewer","post","refuse a viewer's tokens (aws:viewer-id) whose aws:viewer-session-version is <= the given one (default 0)",
   {"204":{"description":"revoked"},"400":E400,"401":E401,"404":E404},params=[ch],
   rb=body({"type":"object","required":["viewer_id"],"properties":{"viewer_id":{"type":"string","maxLength":40},"viewer_session_versions_less_than_or_equal_to":{"type":"integer"}}}),tags=["playback"],opid="revokeViewer")
op("/v1/channels/{channel_id}/viewers","get","concurrent viewers of a channel: the count now, the per-minute maximum series, each alarm's band per period and the periods spent in ALARM (for plots)",
   {"200":ok("the series",ref("ViewerSeries")),"400":E400,"401":E401,"404":E404},
   params=[ch,qp("from","Unix seconds (default: to - 24 h)",{"type":"integer"}),qp("to","Unix seconds (default: now)",{"type":"integer"})],tags=["playback"],opid="getViewers")
aid=pp("alarm_id","alarm id (al-...)")
op("/v1/alarms","post","create a viewer-spike alarm on one channel (channel_id) or on every channel: it learns each channel's usual audience and enters ALARM on an abnormal, sustained jump; actions: notify (an Alarm event to subscriptions) and, opt-in, stop the stream (and reset its key) when the jump is large and sustained",
   {"201":ok("created",ref("Alarm")),"400":E400,"401":E401,"404":err("no such channel"),"409":err("too many alarms")},rb=body(ref("AlarmSpec")),tags=["alarms"],opid="createAlarm")
op("/v1/alarms","get","list alarms with their state per channel",{"200":ok("alarms",{"type":"object","required":["alarms"],"properties":{"alarms":{"type":"array","items":ref("Alarm")}}}),"401":E401},tags=["alarms"],opid="listAlarms")
op("/v1/alarms/{alarm_id}","get","an alarm: settings, state per channel and state-change history",{"200":ok("the alarm",ref("Alarm")),"401":E401,"404":E404},params=[aid],tags=["alarms"],opid="getAlarm")
op("/v1/alarms/{alarm_id}","delete","delete an alarm",{"204":{"description":"deleted"},"401":E401,"404":E404},params=[aid],tags=["alarms"],opid="deleteAlarm")
op("/v1/channels/{channel_id}/stream","get","the live stream of a channel",{"200":ok("live",ref("Stream")),"401":E401,"404":err("channel not found or not live")},params=[ch],tags=["streams"],opid="getStream")
op("/v1/channels/{channel_id}/stream/stop","post","stop the live stream (drop the publisher; refuse it at its next update); with reset_key the encoder's reconnect fails too",
   {"200":ok("stopped",{"type":"object"}),"400":E400,"401":E401,"404":err("channel not found or not live")},params=[ch],
   rb=body({"type":"object","properties":{"reset_key":{"type":"boolean","default":False},"reason":{"type":"string"}}},required=False),tags=["streams"],opid="stopStream")
op("/v1/channels/{channel_id}/sessions","get","stream sessions of a channel, newest first",{"200":ok("sessions",{"type":"object","required":["sessions"],"properties":{"sessions":{"type":"array","items":ref("StreamSession")}}}),"401":E401,"404":E404},
   params=[ch,qp("limit","at most this many (1..1000, default 50)",{"type":"integer"})],tags=["streams"],opid="listSessions")
op("/v1/streams","get","live streams",{"200":ok("live streams",{"type":"object","required":["streams"],"properties":{"streams":{"type":"array","items":ref("Stream")}}}),"401":E401},tags=["streams"],opid="listStreams")
op("/v1/sessions/{stream_id}","get","one stream session with its events",{"200":ok("the session",ref("StreamSession")),"401":E401,"404":E404},params=[pp("stream_id","stream id (st-...)")],tags=["streams"],opid="getSession")
op("/v1/catalog","get","list catalogued recordings",{"200":ok("tracks",{"type":"object","required":["tracks"],"properties":{"tracks":{"type":"array","items":ref("Track")}}}),"400":E400,"401":E401},
   params=[qp("rule","only this rule",{"type":"string","enum":["block","mute","allow","track"]}),qp("search","text in title, artist or rights holder"),qp("limit","at most this many",{"type":"integer"})],tags=["catalog"],opid="listCatalog")
op("/v1/catalog","post","fingerprint a reference recording into the catalog (multipart: `file` = the audio, `metadata` = JSON TrackSpec)",
   {"201":ok("added",ref("Track")),"400":E400,"401":E401,"409":err("this recording is already catalogued")},
   rb={"required":True,"content":{"multipart/form-data":{"schema":{"type":"object","required":["file"],"properties":{"file":{"type":"string","format":"binary"},"metadata":ref("TrackSpec")}}}}},tags=["catalog"],opid="addTrack")
op("/v1/catalog/{track_id}","delete","remove a recording from the catalog",{"204":{"description":"removed"},"400":E400,"401":E401,"404":E404},params=[pp("track_id","track id (integer)")],tags=["catalog"],opid="removeTrack")
idq=[qp("stream_id","only this stream"),qp("channel_id","only this channel"),qp("from","matches that started at or after",time_s),qp("to","matches that started before",time_s),qp("rule","only this effective rule",{"type":"string","enum":["block","mute","allow","track"]}),qp("limit","at most this many (1..10000, default 1000)",{"type":"integer"})]
op("/v1/identifications","get","identifications (latest state of each match), filterable",{"200":ok("identifications",{"type":"object","required":["identifications"],"properties":{"identifications":{"type":"array","items":ref("Identification")}}}),"400":E400,"401":E401},params=idq,tags=["identifications"],opid="listIdentifications")
op("/v1/channels/{channel_id}/reports/usage","get","music-usage report of a channel: per track, seconds played and streams",
   {"200":{"description":"the report (JSON, or CSV with format=csv)","content":{"application/json":{"schema":ref("UsageReport")},"text/csv":{"schema":{"type":"string"}}}},"400":E400,"401":E401,"404":E404},
   params=[ch,qp("from","start of the range",time_s),qp("to","end of the range",time_s),qp("format","json (default) or csv",{"type":"string","enum":["json","csv"]})],tags=["identifications"],opid="usageReport")
evq=[qp("after","cursor: events after this sequence number (default 0)",{"type":"integer"}),qp("limit","at most this many (1..1000, default 100)",{"type":"integer"}),qp("type","only these event names, comma-separated (e.g. Stream Start,Identification)"),qp("channel_id","only this channel"),qp("stream_id","only this stream")]
op("/v1/events","get","the append-only event log, by cursor",{"200":ok("events",{"type":"object","required":["events","next_cursor"],"properties":{"events":{"type":"array","items":ref("Event")},"next_cursor":{"type":"integer"}}}),"400":E400,"401":E401},params=evq,tags=["events"],opid="listEvents")
op("/v1/events/stream","get","live feed of events as Server-Sent Events (`id:` = sequence, `event:` = event name, `data:` = the event JSON); resumes after Last-Event-ID",
   {"200":{"description":"text/event-stream","content":{"text/event-stream":{"schema":{"type":"string"}}}},"400":E400,"401":E401},params=evq[:1]+evq[2:],tags=["events"],opid="streamEvents")
op("/v1/subscriptions","post","subscribe a webhook or an email address to events",{"201":ok("created",ref("Subscription")),"400":E400,"401":E401},rb=body(ref("SubscriptionSpec")),tags=["events"],opid="createSubscription")
op("/v1/subscriptions","get","list subscriptions",{"200":ok("subscriptions",{"type":"object","required":["subscriptions"],"properties":{"subscriptions":{"type":"array","items":ref("Subscription")}}}),"401":E401},tags=["events"],opid="listSubscriptions")
op("/v1/subscriptions/{subscription_id}","delete","delete a subscription",{"204":{"description":"deleted"},"401":E401,"404":E404},params=[pp("subscription_id","subscription id")],tags=["events"],opid="deleteSubscription")
op("/v1/jobs","get","scan jobs in the queue",{"200":ok("jobs",{"type":"object","required":["jobs","counts"],"properties":{"jobs":{"type":"array","items":ref("Job")},"counts":{"type":"object"}}}),"400":E400,"401":E401},
   params=[qp("state","only this state",{"type":"string","enum":["queued","leased","done","dead","cancelled"]}),qp("limit","at most this many (1..1000, default 100)",{"type":"integer"})],tags=["operations"],opid="listJobs")
op("/v1/jobs/{job_id}/requeue","post","put a dead job back in the queue",{"200":ok("requeued",ref("Job")),"401":E401,"404":E404,"409":E409},params=[pp("job_id","job id (integer)")],tags=["operations"],opid="requeueJob")
# hooks
hook_rb={"required":True,"content":{"application/x-www-form-urlencoded":{"schema":{"type":"object","properties":{"call":{"type":"string"},"app":{"type":"string"},"name":{"type":"string"},"addr":{"type":"string"},"clientid":{"type":"string"}}}}}}
for h,desc in [("on_publish","a publisher connected: checks its stream key; answers 302 to the relay application named by channel id, or 403"),
               ("on_publish_done","a publisher left: ends its stream session and its scan"),
               ("on_update","periodic check of a live publisher: 403 stops a stopped stream"),
               ("on_play","an RTMP player connected: with ?token= a viewer, checked like HLS playback; without, only earshot's scanners (loopback) may play"),
               ("on_play_done","an RTMP player left"),
               ("hls_publish_done","the relayed copy of a stream ended")]:
    op("/hooks/nginx/"+h,"post","nginx-rtmp notification: "+desc,{"200":{"description":"allowed"},"302":{"description":"redirect (on_publish)"},"400":{"description":"malformed body"},"403":{"description":"refused"},"503":{"description":"state unavailable (nginx-rtmp refuses the publisher: fails closed)"}},rb=hook_rb,security=False,tags=["ingest hooks"],opid="nginx_"+h)
hdr=lambda n,d,r=False: {"name":n,"in":"header","required":r,"schema":{"type":"string"},"description":d}
op("/hooks/nginx/playback_auth","get","nginx auth_request for every HLS playlist and segment request: the channel's privacy (playback token), restriction policy (countries, origins, strict origin) and revoked viewers decide; the reason is logged and counted (earshot_playback_decisions_total), never sent to the viewer",
   {"200":{"description":"allowed; X-Earshot-Cors-Origin carries the allowed Origin for Access-Control-Allow-Origin"},"401":{"description":"private channel and no token"},"403":{"description":"refused"},"503":{"description":"state unavailable (fails closed)"}},
   params=[hdr("X-Original-URI","the viewer's request URI with its ?token=",True),hdr("X-Real-IP","the viewer's address"),hdr("Origin","the viewer's Origin header"),hdr("User-Agent","the viewer's User-Agent")],security=False,tags=["ingest hooks"],opid="nginx_playback_auth")
S={}
S["Error"]={"type":"object","required":["error"],"properties":{"error":{"type":"object","required":["code","message"],"properties":{"code":{"type":"string","description":"stable snake_case code: not_found, invalid_argument, already_exists, failed_precondition, unavailable, ..."},"message":{"type":"string"}}}}}
S["RestrictionPolicy"]={"type":"object","properties":{"allowedCountries":{"type":"array","items":{"type":"string"}},"allowedOrigins":{"type":"array","items":{"type":"string"}},"enableStrictOriginEnforcement":{"type":"boolean"}}}
S["ChannelSpec"]={"type":"object","properties":{"name":{"type":"string","maxLength":128},"private":{"type":"boolean"},"policy":ref("RestrictionPolicy"),"tags":{"type":"object","additionalProperties":{"type":"string"}},
   "rule_overrides":{"type":"object","description":"per-channel rule overrides, e.g. {\"block\": \"allow\"} for a licensed channel","additionalProperties":{"type":"string","enum":["block","mute","allow","track"]}},
   "block_action":{"type":"string","enum":["notify","stop","stop_and_reset_key"],"description":"overrides rules.block_action for this channel"}}}
S["Channel"]={"type":"object","required":["id","name","private","created","updated"],"properties":{"id":{"type":"string"},"name":{"type":"string"},"private":{"type":"boolean"},"policy":ref("RestrictionPolicy"),"tags":{"type":"object"},"rule_overrides":{"type":"object"},"block_action":{"type":"string"},
   "ingest_endpoint":{"type":"string","description":"RTMP URL to publish to, followed by /{stream key}"},"playback_url":{"type":"string"},"created":{"type":"string"},"updated":{"type":"string"}}}
S["StreamKey"]={"type":"object","required":["channel_id","value"],"properties":{"channel_id":{"type":"string"},"value":{"type":"string","description":"the secret key; stored hashed, never shown again"}}}
S["ChannelCreated"]={"type":"object","required":["channel","stream_key"],"properties":{"channel":ref("Channel"),"stream_key":ref("StreamKey")}}
S["Stream"]={"type":"object","required":["channel_id","stream_id","state","start_time"],"properties":{"channel_id":{"type":"string"},"stream_id":{"type":"string"},"state":{"type":"string","enum":["LIVE"]},"health":{"type":"string","enum":["HEALTHY","STARVING","UNKNOWN"]},"start_time":{"type":"string"},"playback_url":{"type":"string"},"viewer_count":{"type":"integer","description":"concurrent viewers now (IVS viewerCount)"},"ingest":{"type":"object"}}}
S["PlaybackKey"]={"type":"object","required":["id","fingerprint","created"],"properties":{"id":{"type":"string"},"name":{"type":"string"},"fingerprint":{"type":"string","description":"SHA-256 of the DER public key, hex pairs joined by ':'"},"created":{"type":"string"}}}
S["ViewerSeries"]={"type":"object","required":["channel_id","viewer_count","series"],"properties":{"channel_id":{"type":"string"},"viewer_count":{"type":"integer"},"period_s":{"type":"integer"},"series":{"type":"array","items":{"type":"object","required":["timestamp","max_viewers"],"properties":{"time":{"type":"string"},"timestamp":{"type":"integer"},"max_viewers":{"type":"integer"}}}},
   "bands":{"type":"object","description":"alarm id -> its points","additionalProperties":{"type":"array","items":{"type":"object","properties":{"timestamp":{"type":"integer"},"value":{"type":"number"},"band_low":{"type":"number"},"band_high":{"type":"number"},"state":{"type":"string","enum":["OK","ALARM","INSUFFICIENT_DATA"]}}}}},
   "alarm_periods":{"type":"array","items":{"type":"object","properties":{"alarm_id":{"type":"string"},"start":{"type":"string"},"end":{"type":"string","nullable":True}}}}}}
S["AlarmSpec"]={"type":"object","properties":{"name":{"type":"string"},"channel_id":{"type":"string","nullable":True,"description":"null or absent: every channel"},"band_width":{"type":"number","default":3},"period_s":{"type":"integer","default":60},"datapoints_to_alarm":{"type":"integer","default":2},"evaluation_periods":{"type":"integer","default":3},
   "treat_missing_data":{"type":"string","enum":["missing","notBreaching","breaching","ignore"],"default":"missing"},"min_sustain_s":{"type":"number","default":300},
   "actions":{"type":"object","properties":{"notify":{"type":"boolean","default":True},"stop_stream":{"type":"boolean","default":False},"reset_key":{"type":"boolean","default":True}}},
   "auto_stop":{"type":"object","properties":{"ratio":{"type":"number","default":8},"sustain_s":{"type":"number","default":480},"min_learned_minutes":{"type":"number","default":120,"description":"never auto-stop a channel the alarm has seen live for less than this"}}}}}
S["Alarm"]={"allOf":[ref("AlarmSpec"),{"type":"object","required":["id","state","channels"],"properties":{"id":{"type":"string"},"created":{"type":"string"},"state":{"type":"string","enum":["OK","ALARM","INSUFFICIENT_DATA"]},
   "channels":{"type":"array","items":{"type":"object","properties":{"channel_id":{"type":"string"},"state":{"type":"string"},"since":{"type":"string"},"history":{"type":"array","items":{"type":"object","properties":{"time":{"type":"string"},"from":{"type":"string"},"to":{"type":"string"},"reason":{"type":"string"}}}}}}}}}]}
S["Event"]={"type":"object","required":["seq","time","event_name"],"properties":{"seq":{"type":"integer"},"time":{"type":"string"},"event_name":{"type":"string","enum":["Session Created","Session Ended","Stream Start","Stream End","Stream Failure","Identification","Rule Applied","Alarm"]},"channel_id":{"type":"string"},"stream_id":{"type":"string"},"detail":{"type":"object"}}}
S["StreamSession"]={"type":"object","required":["stream_id","channel_id","state","start_time"],"properties":{"stream_id":{"type":"string"},"channel_id":{"type":"string"},"state":{"type":"string","enum":["live","ended"]},"health":{"type":"string"},"start_time":{"type":"string"},"end_time":{"type":"string"},"end_reason":{"type":"string"},"stop_requested":{"type":"boolean"},"ingest":{"type":"object"},"channel":{"type":"object"},"events":{"type":"array","items":ref("Event")}}}
S["TrackSpec"]={"type":"object","properties":{"title":{"type":"string"},"artist":{"type":"string"},"rights_holder":{"type":"string"},"isrc":{"type":"string"},"rule":{"type":"string","enum":["block","mute","allow","track"]},"tags":{"type":"object","additionalProperties":{"type":"string"}}}}
S["Track"]={"type":"object","required":["track_id","title","rule"],"properties":{"track_id":{"type":"integer"},"title":{"type":"string"},"artist":{"type":"string"},"rights_holder":{"type":"string"},"isrc":{"type":"string"},"rule":{"type":"string"},"tags":{"type":"object"},"duration_s":{"type":"number"}}}
S["Identification"]={"type":"object","required":["stream_id","match_id","status","rule","track_id"],"properties":{"stream_id":{"type":"string"},"channel_id":{"type":"string"},"match_id":{"type":"string"},"status":{"type":"string","enum":["match_started","match_ongoing","match_ended"]},"rule":{"type":"string"},"track_rule":{"type":"string"},"track_id":{"type":"integer"},"title":{"type":"string"},"artist":{"type":"string"},"rights_holder":{"type":"string"},"isrc":{"type":"string"},"started_at":{"type":"string"},"stream_offset_s":{"type":"number"},"duration_s":{"type":"number"},"reference_offset_s":{"type":"number"},"score":{"type":"number"}}}
S["UsageReport"]={"type":"object","required":["channel_id","tracks"],"properties":{"channel_id":{"type":"string"},"from":{"type":"string"},"to":{"type":"string"},"tracks":{"type":"array","items":{"type":"object","required":["track_id","seconds_played","streams","plays"],"properties":{"track_id":{"type":"integer"},"title":{"type":"string"},"artist":{"type":"string"},"rights_holder":{"type":"string"},"isrc":{"type":"string"},"seconds_played":{"type":"number"},"streams":{"type":"integer"},"plays":{"type":"integer"}}}}}}
S["SubscriptionSpec"]={"type":"object","required":["kind","target"],"properties":{"kind":{"type":"string","enum":["webhook","email"]},"target":{"type":"string","description":"delivery spec options, as for `earshot scan --notify` without the kind: e.g. url=https://example.com/hook,secret_env=HOOK_SECRET"},"event_types":{"type":"array","items":{"type":"string"}},"channel_ids":{"type":"array","items":{"type":"string"}}}}
S["Subscription"]={"allOf":[ref("SubscriptionSpec"),{"type":"object","required":["id","created"],"properties":{"id":{"type":"string"},"created":{"type":"string"}}}]}
S["Job"]={"type":"object","required":["id","kind","key","state","attempts"],"properties":{"id":{"type":"integer"},"kind":{"type":"string"},"key":{"type":"string"},"state":{"type":"string"},"attempts":{"type":"integer"},"max_attempts":{"type":"integer"},"lease_owner":{"type":"string"},"last_error":{"type":"string"},"payload":{"type":"object"},"created":{"type":"string"},"updated":{"type":"string"}}}
doc={"openapi":"3.0.3","info":{"title":"earshot control plane API","version":"1","description":"Channels, stream keys, live streams, the reference catalog, identifications, events and scan jobs of `earshot serve`. Every /v1 operation except this document needs `Authorization: Bearer <admin API key>` (create one with `earshot admin create-key`). Errors are {\"error\": {\"code\", \"message\"}}."},
     "servers":[{"url":"http://127.0.0.1:8080"}],
     "security":[{"bearer":[]}],
     "components":{"securitySchemes":{"bearer":{"type":"http","scheme":"bearer","description":"an admin API key (ek_...)"}},"schemas":S},
     "paths":paths}
print(json.dumps(doc, indent=1))
