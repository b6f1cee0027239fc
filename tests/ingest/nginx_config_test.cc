// The generated nginx.conf: what it must contain, and option validation.
// (ingest_e2e_test runs it through a real `nginx -t` and a real nginx.)
#include "ingest/nginx_config.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

namespace earshot::ingest {
namespace {

bool Contains(const std::string& text, std::string_view needle) {
  return text.find(needle) != std::string::npos;
}

// The text of the block that starts with `head` ("application ingest {"),
// up to its matching '}'; "" when absent.
std::string Block(const std::string& text, std::string_view head) {
  const std::size_t start = text.find(head);
  if (start == std::string::npos) return "";
  int depth = 0;
  for (std::size_t i = text.find('{', start); i < text.size(); ++i) {
    if (text[i] == '{') ++depth;
    if (text[i] == '}' && --depth == 0) return text.substr(start, i - start + 1);
  }
  return "";
}

std::string Generate(const NginxConfigOptions& options) {
  auto config = GenerateNginxConfig(options);
  EXPECT_TRUE(config) << config.error().ToString();
  return config ? *config : std::string();
}

TEST(NginxConfigTest, DefaultsProduceTheDocumentedLayout) {
  const std::string c = Generate({});
  // Process-wide.
  EXPECT_TRUE(Contains(c, "load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;\n"));
  EXPECT_TRUE(Contains(c, "\nworker_processes 1;\n"));
  EXPECT_TRUE(Contains(c, "rtmp_control"));  // the comment saying why is next to it
  EXPECT_TRUE(Contains(c, "# One worker:"));
  EXPECT_TRUE(Contains(c, "\ndaemon off;\n"));
  EXPECT_TRUE(Contains(c, "\npid logs/nginx.pid;\n"));
  EXPECT_TRUE(Contains(c, "\nerror_log logs/error.log crit;\n"));
  EXPECT_FALSE(Contains(c, "\nuser "));
  EXPECT_TRUE(Contains(c, "worker_connections 1024;"));
  EXPECT_TRUE(Contains(c, "nginx -p /var/lib/earshot/nginx/ -e /var/lib/earshot/nginx/logs/error.log"));

  // RTMP server.
  EXPECT_TRUE(Contains(c, "listen 0.0.0.0:1935;"));
  EXPECT_FALSE(Contains(c, "listen 127.0.0.1:1935;"));  // 0.0.0.0 covers loopback
  EXPECT_TRUE(Contains(c, "notify_method post;"));
  EXPECT_TRUE(Contains(c, "access_log logs/rtmp_access.log;"));
  EXPECT_TRUE(Contains(c, "access_log logs/access.log earshot_no_query;"));  // no ?token= in logs

  const std::string ingest = Block(c, "application ingest {");
  ASSERT_FALSE(ingest.empty()) << c;
  EXPECT_TRUE(Contains(ingest, "live on;"));
  EXPECT_TRUE(Contains(ingest, "allow publish all;"));
  EXPECT_TRUE(Contains(ingest, "deny play all;"));
  EXPECT_TRUE(Contains(ingest, "on_publish      http://127.0.0.1:8080/hooks/nginx/on_publish;"));
  EXPECT_TRUE(
      Contains(ingest, "on_publish_done http://127.0.0.1:8080/hooks/nginx/on_publish_done;"));
  EXPECT_TRUE(Contains(ingest, "on_update       http://127.0.0.1:8080/hooks/nginx/on_update;"));
  EXPECT_TRUE(Contains(ingest, "notify_update_timeout 10s;"));
  EXPECT_TRUE(Contains(ingest, "notify_relay_redirect off;"));
  EXPECT_TRUE(Contains(ingest, "drop_idle_publisher 10s;"));
  EXPECT_FALSE(Contains(ingest, "hls on;")) << "the key must never name HLS files";
  EXPECT_FALSE(Contains(ingest, "record all"));

  const std::string relay = Block(c, "application hls {");
  ASSERT_FALSE(relay.empty()) << c;
  EXPECT_TRUE(Contains(relay, "allow publish 127.0.0.1;"));
  EXPECT_TRUE(Contains(relay, "deny publish all;"));
  EXPECT_TRUE(Contains(relay, "allow play 127.0.0.1;"));
  EXPECT_TRUE(Contains(relay, "deny play all;"));
  EXPECT_TRUE(Contains(relay, "on_publish_done http://127.0.0.1:8080/hooks/nginx/hls_publish_done;"));
  EXPECT_FALSE(Contains(relay, "on_publish "));
  EXPECT_TRUE(Contains(relay, "hls on;"));
  EXPECT_TRUE(Contains(relay, "hls_path /var/lib/earshot/hls;"));
  EXPECT_TRUE(Contains(relay, "hls_fragment 2s;"));
  EXPECT_TRUE(Contains(relay, "hls_playlist_length 12s;"));

  // HTTP server.
  EXPECT_TRUE(Contains(c, "listen 0.0.0.0:8088;"));
  const std::string hls = Block(c, "location /hls/ {");
  ASSERT_FALSE(hls.empty()) << c;
  EXPECT_TRUE(Contains(hls, "alias /var/lib/earshot/hls/;"));
  EXPECT_TRUE(Contains(hls, "auth_request /_earshot/playback_auth;"));
  EXPECT_TRUE(Contains(hls, "sub_filter '.ts' '.ts?token=$arg_token';"));
  EXPECT_TRUE(Contains(hls, "sub_filter_once off;"));
  EXPECT_TRUE(Contains(hls, "sub_filter_types application/vnd.apple.mpegurl;"));
  const std::string auth = Block(c, "location = /_earshot/playback_auth {");
  ASSERT_FALSE(auth.empty()) << c;
  EXPECT_TRUE(Contains(auth, "internal;"));
  // Over kept-alive connections to earshot (an upstream), HTTP/1.1.
  EXPECT_TRUE(Contains(auth, "proxy_pass http://earshot_playback_auth/v1/playback/auth;"));
  EXPECT_TRUE(Contains(auth, "proxy_http_version 1.1;"));
  EXPECT_TRUE(Contains(auth, "proxy_set_header Connection \"\";"));
  const std::string upstream = Block(c, "upstream earshot_playback_auth {");
  EXPECT_TRUE(Contains(upstream, "server 127.0.0.1:8080;")) << c;
  EXPECT_TRUE(Contains(upstream, "keepalive 8;"));
  // The viewer's path and token, captured in the HLS location (inside the
  // subrequest $uri would be /_earshot/playback_auth).
  EXPECT_TRUE(Contains(hls, "set $earshot_path $uri;"));
  EXPECT_TRUE(Contains(hls, "set $earshot_token $arg_token;"));
  EXPECT_TRUE(Contains(auth, "proxy_set_header X-Original-URI $earshot_path;"));
  EXPECT_TRUE(Contains(auth, "proxy_set_header X-Playback-Token $earshot_token;"));
  EXPECT_TRUE(Contains(auth, "proxy_set_header X-Real-IP $remote_addr;"));
  EXPECT_TRUE(Contains(auth, "proxy_set_header Origin $http_origin;"));
  EXPECT_TRUE(Contains(auth, "proxy_pass_request_body off;"));
  for (std::string_view head : {"location /control {", "location /stat {"}) {
    const std::string loopback = Block(c, head);
    ASSERT_FALSE(loopback.empty()) << head;
    EXPECT_TRUE(Contains(loopback, "allow 127.0.0.1;")) << loopback;
    EXPECT_TRUE(Contains(loopback, "deny all;")) << loopback;
  }
  EXPECT_TRUE(Contains(Block(c, "location /control {"), "rtmp_control all;"));
  EXPECT_TRUE(Contains(Block(c, "location /stat {"), "rtmp_stat all;"));
  // Temp paths under the prefix, not /var/lib/nginx.
  EXPECT_TRUE(Contains(c, "client_body_temp_path tmp/body;"));
  EXPECT_TRUE(Contains(c, "proxy_temp_path tmp/proxy;"));

  // Braces balance.
  int depth = 0;
  for (char ch : c) {
    if (ch == '{') ++depth;
    if (ch == '}') --depth;
    ASSERT_GE(depth, 0);
  }
  EXPECT_EQ(depth, 0);
}

TEST(NginxConfigTest, OptionsShowUpWhereTheyBelong) {
  NginxConfigOptions o;
  o.run_dir = "/srv/earshot/run/";
  o.hls_dir = "/srv/earshot/hls/";
  o.rtmp_module = "";
  o.user = "www-data www-data";
  o.daemon = true;
  o.error_log_level = "info";
  o.worker_connections = 4096;
  o.rtmp_listen = "192.0.2.10";
  o.rtmp_port = 19350;
  o.ingest_app = "live-in";
  o.relay_app = "channels";
  o.publish_allow = {"198.51.100.0/24", "127.0.0.1"};
  o.hook_base_url = "http://127.0.0.1:9000/hooks/nginx/";
  o.notify_update_timeout_s = 30;
  o.drop_idle_publisher_s = 20;
  o.hls_fragment_s = 4;
  o.hls_playlist_length_s = 20;
  o.http_listen = "127.0.0.1";
  o.http_port = 8443;
  o.hls_location = "/live/";
  o.playback_auth_url = "https://auth.example.com/v1/playback/auth";
  const std::string c = Generate(o);

  EXPECT_FALSE(Contains(c, "load_module"));
  EXPECT_TRUE(Contains(c, "\nuser www-data www-data;"));
  EXPECT_TRUE(Contains(c, "\ndaemon on;\n"));
  EXPECT_TRUE(Contains(c, "error_log logs/error.log info;"));
  EXPECT_TRUE(Contains(c, "worker_connections 4096;"));
  EXPECT_TRUE(Contains(c, "listen 192.0.2.10:19350;"));
  EXPECT_TRUE(Contains(c, "listen 127.0.0.1:19350;"))
      << "the relay needs loopback when the public address is specific";
  EXPECT_TRUE(Contains(c, "listen 127.0.0.1:8443;"));
  EXPECT_FALSE(Contains(c, "listen 0.0.0.0"));
  const std::string ingest = Block(c, "application live-in {");
  ASSERT_FALSE(ingest.empty()) << c;
  EXPECT_TRUE(Contains(ingest, "allow publish 198.51.100.0/24;\n"));
  EXPECT_TRUE(Contains(ingest, "allow publish 127.0.0.1;\n"));
  EXPECT_TRUE(Contains(ingest, "deny publish all;"));
  EXPECT_FALSE(Contains(ingest, "allow publish all;"));
  EXPECT_TRUE(Contains(ingest, "http://127.0.0.1:9000/hooks/nginx/on_publish;"));
  EXPECT_FALSE(Contains(c, "nginx//on_"));
  EXPECT_TRUE(Contains(ingest, "notify_update_timeout 30s;"));
  EXPECT_TRUE(Contains(ingest, "drop_idle_publisher 20s;"));
  const std::string relay = Block(c, "application channels {");
  ASSERT_FALSE(relay.empty()) << c;
  EXPECT_TRUE(Contains(relay, "hls_path /srv/earshot/hls;"));
  EXPECT_TRUE(Contains(relay, "hls_fragment 4s;"));
  EXPECT_TRUE(Contains(relay, "hls_playlist_length 20s;"));
  EXPECT_TRUE(Contains(relay, "/hooks/nginx/hls_publish_done;"));
  const std::string hls = Block(c, "location /live/ {");
  ASSERT_FALSE(hls.empty()) << c;
  EXPECT_TRUE(Contains(hls, "alias /srv/earshot/hls/;"));
  EXPECT_TRUE(Contains(c, "proxy_pass https://auth.example.com/v1/playback/auth;"));
  EXPECT_TRUE(Contains(c, "nginx -p /srv/earshot/run/ -e /srv/earshot/run/logs/error.log"));
}

TEST(NginxConfigTest, PlaybackGetsCorsFromEarshotAndTheViewerAddressFromTrustedProxiesOnly) {
  NginxConfigOptions o;
  auto plain = GenerateNginxConfig(o);
  ASSERT_TRUE(plain) << plain.error().ToString();
  // CORS: the origin earshot allowed, passed from its auth answer.
  EXPECT_TRUE(Contains(*plain, "auth_request_set $earshot_cors_origin $upstream_http_x_earshot_cors_origin;"));
  EXPECT_TRUE(Contains(*plain, "add_header Access-Control-Allow-Origin $earshot_cors_origin always;"));
  // No proxy believed by default: the TCP peer is the viewer.
  EXPECT_FALSE(Contains(*plain, "real_ip_header"));
  EXPECT_FALSE(Contains(*plain, "set_real_ip_from"));
  o.trusted_proxies = {"10.0.0.0/8", "192.0.2.7"};
  auto proxied = GenerateNginxConfig(o);
  ASSERT_TRUE(proxied) << proxied.error().ToString();
  EXPECT_TRUE(Contains(*proxied, "set_real_ip_from 10.0.0.0/8;"));
  EXPECT_TRUE(Contains(*proxied, "set_real_ip_from 192.0.2.7;"));
  EXPECT_TRUE(Contains(*proxied, "real_ip_header X-Forwarded-For;"));
  EXPECT_TRUE(Contains(*proxied, "proxy_set_header X-Real-IP $remote_addr;"));
}

TEST(NginxConfigTest, InvalidOptionsAreRefusedNamingTheOption) {
  struct Case {
    std::string option;
    std::function<void(NginxConfigOptions&)> change;
  };
  const std::vector<Case> cases = {
      {"run_dir", [](auto& o) { o.run_dir = "relative/run"; }},
      {"run_dir", [](auto& o) { o.run_dir = ""; }},
      {"run_dir", [](auto& o) { o.run_dir = "/srv/my run"; }},
      {"hls_dir", [](auto& o) { o.hls_dir = "hls"; }},
      {"hls_dir", [](auto& o) { o.hls_dir = "/srv/hls;evil"; }},
      {"rtmp_module", [](auto& o) { o.rtmp_module = "ngx_rtmp_module.so"; }},
      {"user", [](auto& o) { o.user = "www-data;"; }},
      {"user", [](auto& o) { o.user = "a b c"; }},
      {"error_log_level", [](auto& o) { o.error_log_level = "verbose"; }},
      {"worker_connections", [](auto& o) { o.worker_connections = 0; }},
      {"trusted_proxies", [](auto& o) { o.trusted_proxies = {"all"}; }},
      {"trusted_proxies", [](auto& o) { o.trusted_proxies = {"0.0.0.0/0"}; }},
      {"trusted_proxies", [](auto& o) { o.trusted_proxies = {"10.0.0.1; allow all"}; }},
      {"rtmp_listen", [](auto& o) { o.rtmp_listen = ""; }},
      {"rtmp_listen", [](auto& o) { o.rtmp_listen = "0.0.0.0 ssl"; }},
      {"http_listen", [](auto& o) { o.http_listen = "1.2.3.4;"; }},
      {"rtmp_port", [](auto& o) { o.rtmp_port = 0; }},
      {"rtmp_port", [](auto& o) { o.rtmp_port = 65536; }},
      {"http_port", [](auto& o) { o.http_port = -1; }},
      {"http_port", [](auto& o) { o.http_port = o.rtmp_port; }},
      {"ingest_app", [](auto& o) { o.ingest_app = ""; }},
      {"ingest_app", [](auto& o) { o.ingest_app = "in gest"; }},
      {"relay_app", [](auto& o) { o.relay_app = "hls/x"; }},
      {"relay_app", [](auto& o) { o.relay_app = o.ingest_app; }},
      {"publish_allow", [](auto& o) { o.publish_allow = {}; }},
      {"publish_allow", [](auto& o) { o.publish_allow = {"everyone"}; }},
      {"hook_base_url", [](auto& o) { o.hook_base_url = "https://127.0.0.1:8080/hooks"; }},
      {"hook_base_url", [](auto& o) { o.hook_base_url = "127.0.0.1:8080/hooks"; }},
      {"hook_base_url", [](auto& o) { o.hook_base_url = "http:///hooks"; }},
      {"hook_base_url", [](auto& o) { o.hook_base_url = "http://h/x?y=1"; }},
      {"playback_auth_url", [](auto& o) { o.playback_auth_url = "ftp://h/auth"; }},
      {"playback_auth_url", [](auto& o) { o.playback_auth_url = "http://h/a'b"; }},
      {"notify_update_timeout_s", [](auto& o) { o.notify_update_timeout_s = 0; }},
      {"drop_idle_publisher_s", [](auto& o) { o.drop_idle_publisher_s = 3601; }},
      {"hls_fragment_s", [](auto& o) { o.hls_fragment_s = 0; }},
      {"hls_playlist_length_s", [](auto& o) { o.hls_playlist_length_s = o.hls_fragment_s - 1; }},
      {"hls_location", [](auto& o) { o.hls_location = "hls"; }},
      {"hls_location", [](auto& o) { o.hls_location = "/hls"; }},
      {"hls_location", [](auto& o) { o.hls_location = "/control/"; }},
  };
  for (const Case& c : cases) {
    NginxConfigOptions o;
    c.change(o);
    const Status valid = ValidateNginxConfigOptions(o);
    ASSERT_FALSE(valid) << c.option;
    EXPECT_EQ(valid.error().code(), ErrorCode::kInvalidArgument) << c.option;
    EXPECT_NE(valid.error().message().find(c.option), std::string::npos)
        << c.option << " → " << valid.error().message();
    auto config = GenerateNginxConfig(o);
    ASSERT_FALSE(config) << c.option;
    EXPECT_EQ(config.error().message(), valid.error().message());
  }
  EXPECT_TRUE(ValidateNginxConfigOptions({}));
}

TEST(NginxConfigTest, HookBaseUrlMustBePlainHttpWithAReason) {
  NginxConfigOptions o;
  o.hook_base_url = "https://earshot.example.com/hooks/nginx";
  auto config = GenerateNginxConfig(o);
  ASSERT_FALSE(config);
  EXPECT_NE(config.error().message().find("plain HTTP"), std::string::npos)
      << config.error().message();
}

}  // namespace
}  // namespace earshot::ingest
