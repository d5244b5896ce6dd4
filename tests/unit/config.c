/* Unit test for config.c: defaults, overrides, and one-line errors naming the key. */
#include "jobring/config.h"
#include "test.h"

#include <cjson/cJSON.h>

static void bad(const char *json, const char *want_key)
{
	struct config c;
	char err[256] = "";
	CHECK(config_load_text(&c, json, err, sizeof(err)) < 0);
	if (!strstr(err, want_key)) {
		fprintf(stderr, "error '%s' does not name '%s'\n", err, want_key);
		exit(T_FAIL);
	}
	CHECK(!strchr(err, '\n'));
}

int main(void)
{
	struct config c;
	char err[256];

	CHECK_EQ(config_load(&c, NULL, err, sizeof(err)), 0);
	CHECK_EQ(c.listen.port, 8080);
	CHECK_EQ(c.provider_listen.port, 8081);
	CHECK_EQ(c.dispatch.max_attempts, 3);
	CHECK_EQ(c.sweep.interval_seconds, 120);
	CHECK_EQ(c.sync, SYNC_FULL);
	CHECK(config_type(&c, "ffmpeg") && config_type(&c, "ffprobe") && config_type(&c, "sleep") &&
	      config_type(&c, "checksum") && config_type(&c, "fail"));
	CHECK(config_plan(&c, "free") && config_plan(&c, "pro"));
	CHECK_EQ(config_plan(&c, "free")->requests_per_minute, 30);
	CHECK(config_plan_allows(config_plan(&c, "free"), "ffmpeg"));
	CHECK_EQ(config_estimate(config_type(&c, "ffmpeg")), 1000000 + 833333LL * 60);
	CHECK_EQ(config_price(config_type(&c, "ffmpeg"), 2000, 1LL << 40), 1000000 + 1666666);
	CHECK_EQ(config_price(config_type(&c, "ffmpeg"), 2000, 5), 5);
	config_free(&c);

	CHECK_EQ(config_load_text(&c,
		"{\"listen\":\"127.0.0.1:0\",\"storage\":{\"sync\":\"none\",\"mapSizeMB\":64},"
		"\"dispatch\":{\"maxAttempts\":5},\"plans\":{\"big\":{\"concurrentJobs\":100,"
		"\"jobTypes\":[\"sleep\"]}},\"jobTypes\":{\"sleep\":{\"maxExecutionSeconds\":2},"
		"\"echo\":{\"schema\":{\"type\":\"object\"},\"price\":{\"base\":5}}},"
		"\"providers\":[{\"id\":\"a\",\"url\":\"http://127.0.0.1:9/x\",\"types\":[\"sleep\"],"
		"\"capacity\":3}]}", err, sizeof(err)), 0);
	CHECK_EQ(c.listen.port, 0);
	CHECK_EQ(c.sync, SYNC_NONE);
	CHECK_EQ(c.map_size_mb, 64);
	CHECK_EQ(c.dispatch.max_attempts, 5);
	CHECK_EQ(c.dispatch.backoff_ms, 1000);
	CHECK_EQ(config_type(&c, "sleep")->max_execution_seconds, 2);
	CHECK(config_type(&c, "ffmpeg"));
	CHECK_EQ(config_type(&c, "echo")->price.base, 5);
	CHECK(config_plan_allows(config_plan(&c, "big"), "sleep"));
	CHECK(!config_plan_allows(config_plan(&c, "big"), "ffmpeg"));
	CHECK_EQ(c.nproviders, 1);
	CHECK(config_provider_serves(&c.providers[0], "sleep"));
	CHECK(!config_provider_serves(&c.providers[0], "ffmpeg"));
	config_free(&c);

	bad("{\"listn\":\"x\"}", "listn");
	bad("{\"storage\":{\"sink\":\"full\"}}", "storage.sink");
	bad("{\"storage\":{\"sync\":\"sometimes\"}}", "storage.sync");
	bad("{\"dispatch\":{\"maxAttempts\":\"3\"}}", "dispatch.maxAttempts");
	bad("{\"dispatch\":{\"maxAttempts\":0}}", "dispatch.maxAttempts");
	bad("{\"dispatch\":{\"maxAttempts\":1.5}}", "dispatch.maxAttempts");
	bad("{\"dispatch\":{\"backoffMs\":5000,\"backoffMaxMs\":10}}", "dispatch.backoffMaxMs");
	bad("{\"sweep\":[]}", "sweep");
	bad("{\"listen\":\"nohost\"}", "listen");
	bad("{\"listen\":\"1.2.3.4:99999\"}", "listen");
	bad("{\"webhooks\":{\"allowPrivateTargets\":1}}", "webhooks.allowPrivateTargets");
	bad("{\"plans\":{\"free\":{\"queueLimit\":-1}}}", "plans.free.queueLimit");
	bad("{\"plans\":{\"free\":{\"colour\":1}}}", "plans.free.colour");
	bad("{\"jobTypes\":{\"x\":{\"price\":{\"base\":-1}}}}", "jobTypes.x.price.base");
	bad("{\"jobTypes\":{\"bad name\":{}}}", "jobTypes.bad name");
	bad("{\"providers\":[{\"id\":\"a\"}]}", "providers[0]");
	bad("{\"providers\":[{\"id\":\"a\",\"url\":\"http://x/\",\"weight\":2}]}", "providers[0].weight");
	bad("{\"ringSlots\":1000}", "ringSlots");
	bad("{\"publicUrl\":\"ftp://x\"}", "publicUrl");
	bad("{\"adminToken\":\"short\"}", "adminToken");
	bad("{\"listen\": ", "not valid JSON");
	bad("[1,2]", "top level");
	bad("{\"ab\\ncd\":1}", "ab?cd");	/* found by fuzz_config: stays one line */

	/* storage.blobs: local by default; s3 needs endpoint, bucket and keys */
	unsetenv("JOBRING_S3_ACCESS_KEY");
	unsetenv("JOBRING_S3_SECRET_KEY");
	CHECK_EQ(config_load(&c, NULL, err, sizeof(err)), 0);
	CHECK_EQ(c.blobs.kind, BLOBS_LOCAL);
	config_free(&c);
#define S3(extra) "{\"storage\":{\"blobs\":{\"kind\":\"s3\",\"endpoint\":\"http://127.0.0.1:9000\"," \
	"\"bucket\":\"media\",\"accessKey\":\"AKID\",\"secretKey\":\"s3cret\"" extra "}}}"
	CHECK_EQ(config_load_text(&c, S3(",\"pathStyle\":true"), err, sizeof(err)), 0);
	CHECK_EQ(c.blobs.kind, BLOBS_S3);
	CHECK_STR(c.blobs.endpoint, "http://127.0.0.1:9000");
	CHECK_STR(c.blobs.bucket, "media");
	CHECK_STR(c.blobs.region, "us-east-1");
	CHECK_STR(c.blobs.access_key, "AKID");
	CHECK_STR(c.blobs.secret_key, "s3cret");
	CHECK_EQ(c.blobs.path_style, 1);
	CHECK_EQ(c.blobs.expires_seconds, 900);
	config_free(&c);
	bad("{\"storage\":{\"blobs\":{\"kind\":\"gcs\"}}}", "storage.blobs.kind");
	bad("{\"storage\":{\"blobs\":{\"kind\":3}}}", "storage.blobs.kind");
	bad("{\"storage\":{\"blobs\":{\"bukket\":\"x\"}}}", "storage.blobs.bukket");
	bad("{\"storage\":{\"blobs\":[]}}", "storage.blobs");
	bad("{\"storage\":{\"blobs\":{\"kind\":\"s3\"}}}", "storage.blobs.endpoint");
	bad(S3(",\"pathStyle\":1"), "storage.blobs.pathStyle");
	bad(S3(",\"region\":\"US East\""), "storage.blobs.region");
	bad(S3(",\"expiresSeconds\":0"), "storage.blobs.expiresSeconds");
	bad("{\"storage\":{\"blobs\":{\"kind\":\"s3\",\"endpoint\":\"http://h:9/path\"}}}",
	    "storage.blobs.endpoint");
	bad("{\"storage\":{\"blobs\":{\"kind\":\"s3\",\"endpoint\":\"http://h\",\"bucket\":\"A\"}}}",
	    "storage.blobs.bucket");
	bad("{\"storage\":{\"blobs\":{\"kind\":\"s3\",\"endpoint\":\"http://h\",\"bucket\":\"abc\"}}}",
	    "storage.blobs.accessKey");
	bad("{\"storage\":{\"blobs\":{\"kind\":\"s3\",\"endpoint\":\"http://h\",\"bucket\":\"abc\","
	    "\"accessKey\":\"a\"}}}", "storage.blobs.secretKey");
	bad("{\"storage\":{\"blobs\":{\"kind\":\"s3\",\"endpoint\":\"http://[::1]:9\",\"bucket\":\"abc\"}}}",
	    "storage.blobs.pathStyle");
	/* keys from the environment when the file has none */
	setenv("JOBRING_S3_ACCESS_KEY", "ENVAK", 1);
	setenv("JOBRING_S3_SECRET_KEY", "ENVSK", 1);
	CHECK_EQ(config_load_text(&c, "{\"storage\":{\"blobs\":{\"kind\":\"s3\",\"endpoint\":\"http://h/\","
				  "\"bucket\":\"abc\"}}}", err, sizeof(err)), 0);
	CHECK_STR(c.blobs.access_key, "ENVAK");
	CHECK_STR(c.blobs.secret_key, "ENVSK");
	config_free(&c);
	setenv("JOBRING_S3_SECRET_KEY", "has space", 1);
	bad("{\"storage\":{\"blobs\":{\"kind\":\"s3\",\"endpoint\":\"http://h\",\"bucket\":\"abc\"}}}",
	    "storage.blobs.secretKey");
	unsetenv("JOBRING_S3_ACCESS_KEY");
	unsetenv("JOBRING_S3_SECRET_KEY");
	printf("config: ok\n");
	return T_PASS;
}
