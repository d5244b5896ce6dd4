/* whsign.h - webhook signatures, both schemes jobring sends on every
 * delivery and per-job callback:
 *
 *   Rendobar    X-Rendobar-Signature: sha256=<hex HMAC-SHA256(secret, "{ts}.{body}")>
 *               keyed with the secret string exactly as given ("whsec_..." included),
 *               ts = X-Rendobar-Timestamp, Unix seconds.
 *   Standard    webhook-signature: v1,<base64 HMAC-SHA256(key, "{msg_id}.{ts}.{body}")>
 *   Webhooks    key = base64-decode of the secret after its "whsec_" prefix
 *               (24..64 bytes, per the standardwebhooks.com spec); msg_id =
 *               webhook-id, ts = webhook-timestamp. The header may carry several
 *               space-separated signatures (key rotation); any v1 match passes.
 *
 * whsign_new_secret() makes "whsec_" + base64(32 random bytes), which is a
 * valid key for both schemes.
 *
 * Ownership: all output goes to caller buffers; nothing is retained.
 * Errors: -EINVAL malformed input (secret, id, timestamp or header syntax),
 * -ENOSPC buffer too small, -EACCES no signature matches, -ETIMEDOUT a
 * signature matches but |now - ts| > WHSIGN_TOLERANCE_S, -EIO libcrypto.
 * Signatures are checked (in constant time) before the timestamp. */
#ifndef JOBRING_WHSIGN_H
#define JOBRING_WHSIGN_H

#include <stddef.h>
#include <stdint.h>

#define WHSIGN_SECRET_PREFIX "whsec_"
/** Random bytes in a new secret, and strlen() of the secret. */
#define WHSIGN_SECRET_BYTES 32
#define WHSIGN_SECRET_LEN 50
/** Replay window for verification, seconds either side of now. */
#define WHSIGN_TOLERANCE_S 300
/** strlen() of a made X-Rendobar-Signature ("sha256=" + 64 hex). */
#define WHSIGN_RENDOBAR_LEN 71
/** strlen() of one made webhook-signature entry ("v1," + 44 base64). */
#define WHSIGN_STD_LEN 47
/** Longest accepted webhook-id and webhook-signature header. */
#define WHSIGN_MSG_ID_MAX 256
#define WHSIGN_HEADER_MAX 4096

/** Write a new secret (WHSIGN_SECRET_LEN chars + NUL) into out.
 *  Returns WHSIGN_SECRET_LEN or -ENOSPC. */
int whsign_new_secret(char *out, size_t outsz);

/** X-Rendobar-Signature value for body sent at ts (Unix seconds, >= 0).
 *  secret is a non-empty string. 0 or -EINVAL/-EIO. */
int whsign_rendobar_make(const char *secret, int64_t ts, const void *body, size_t len,
			 char out[WHSIGN_RENDOBAR_LEN + 1]);

/** Verify an X-Rendobar-Signature header against the X-Rendobar-Timestamp
 *  string ts (canonical decimal seconds) and the raw body, at now_s (>= 0).
 *  0, -EINVAL, -EACCES, -ETIMEDOUT or -EIO. */
int whsign_rendobar_verify(const char *secret, const char *ts, const void *body, size_t len,
			   const char *header, int64_t now_s);

/** One webhook-signature entry ("v1,<base64>") for (msg_id, ts, body).
 *  secret is "whsec_<base64>" (the prefix is optional); msg_id is 1..256
 *  printable ASCII without space or '.'. 0 or -EINVAL/-EIO. */
int whsign_std_make(const char *secret, const char *msg_id, int64_t ts, const void *body,
		    size_t len, char out[WHSIGN_STD_LEN + 1]);

/** Verify a webhook-signature header (space-separated "version,signature"
 *  entries; entries other than v1 are ignored) against webhook-id msg_id,
 *  webhook-timestamp ts (canonical decimal seconds) and the raw body, at
 *  now_s (>= 0). 0, -EINVAL, -EACCES, -ETIMEDOUT or -EIO. */
int whsign_std_verify(const char *secret, const char *msg_id, const char *ts, const void *body,
		      size_t len, const char *header, int64_t now_s);

#endif
