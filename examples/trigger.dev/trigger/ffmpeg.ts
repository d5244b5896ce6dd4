// jobring-ffmpeg: a Trigger.dev task that runs jobring "ffmpeg" jobs.
//
// jobring triggers it with POST /api/v1/tasks/jobring-ffmpeg/trigger and the
// payload is jobring's dispatch body (DESIGN.md §6):
//   {jobId, type, params: {command, timeout?}, inputs: {name: {url}},
//    output: {uploadUrl}, callbackUrl, callbackToken, deadline, attempt}
// The task does what `jobring worker` does: downloads every input to its
// bare file name in a fresh work directory, checks the command with the same
// sandbox rules (bare file names only, no protocols or URLs, no filters or
// formats that open files or sockets, -protocol_whitelist file on every
// input and output), runs FFmpeg without a shell, PUTs each output to
// uploadUrl with {path} replaced (following jobring's 307 to S3 when its
// blobs live in a bucket), and reports running/progress/complete/failed to
// callbackUrl with "Authorization: Bearer {callbackToken}".
//
// jobring does the retrying (a new attempt has a new callbackToken), so the
// task itself never retries.
import { logger, task } from "@trigger.dev/sdk";
import { spawn } from "node:child_process";
import { createWriteStream, openAsBlob } from "node:fs";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";

export type JobringPayload = {
  jobId: string;
  type: string;
  params: { command?: string; timeout?: number; [k: string]: unknown };
  inputs: Record<string, { url: string }>;
  output: { uploadUrl: string };
  callbackUrl: string;
  callbackToken: string;
  deadline: number; // Unix ms
  attempt: number;
};

type OutputFile = { path: string; size: number; type: string };

const MAX_INPUT_BYTES = Number(process.env.JOBRING_MAX_INPUT_BYTES ?? 2 ** 31);
const FFMPEG = process.env.FFMPEG_PATH ?? "ffmpeg"; // set by the ffmpeg() build extension

// ---- the sandbox (the rules of src/worker_sandbox.c) ---------------------------

const NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;
const FLAGS = new Set(("y n ignore_unknown copy_unknown recast_media benchmark benchmark_all " +
  "re copyts start_at_zero shortest bitexact xerror copyinkf auto_conversion_filters stats " +
  "debug_ts find_stream_info vn psnr qphist force_fps an sn dn fix_sub_duration " +
  "accurate_seek hide_banner vstats report noautorotate noautoscale nostats").split(" "));
const DENIED = new Set(("progress stdin nostdin protocol_whitelist protocol_blacklist " +
  "format_whitelist filter_script filter_complex_script dump hex L h ? help -help version " +
  "buildconf formats muxers demuxers devices codecs decoders encoders bsfs protocols filters " +
  "pix_fmts layouts sample_fmts dispositions colors sources sinks hwaccels").split(" "));
const FILTER_OPTS = new Set(["vf", "af", "filter", "filter_complex", "lavfi"]);
const BLOCKED_FORMATS = new Set(("lavfi concat hls applehttp tee segment ssegment stream_segment " +
  "dash fifo fifo_test null sdp rtp rtsp rtp_mpegts image2pipe alsa pulse oss jack sndio fbdev " +
  "v4l2 video4linux2 x11grab xcbgrab kmsgrab sdl sdl2 xv opengl caca openal decklink").split(" "));
const BLOCKED_FILTERS = ["movie", "amovie", "sendcmd", "asendcmd", "zmq", "azmq", "ladspa", "lv2",
  "frei0r", "frei0r_src", "lavfi"];
const PROTOCOLS = new Set(("amqp async bluray cache concat concatf crypto data fd ffrtmpcrypt " +
  "ffrtmphttp file ftp gopher gophers hls http httpproxy https icecast ipfs ipns librist librtmp " +
  "librtmpe librtmps librtmpt librtmpte libsmbclient libsrt libssh libzmq md5 mmsh mmst pipe " +
  "prompeg rist rtmp rtmpe rtmps rtmpt rtmpte rtmpts rtp rtsp sctp sftp smb srt srtp subfile " +
  "tcp tee tls udp udplite unix zmq dtls").split(" "));

class JobError extends Error {
  constructor(public code: string, message: string, public detail = "") {
    super(message);
  }
}

/** Shell-like split (quotes and backslashes), never given to a shell. */
export function splitCommand(cmd: string): string[] {
  const out: string[] = [];
  let cur = "", inTok = false, q: string | null = null;
  for (let i = 0; i < cmd.length; i++) {
    const c = cmd[i];
    if (q) {
      if (c === q) q = null;
      else if (c === "\\" && q === '"' && i + 1 < cmd.length) cur += cmd[++i];
      else cur += c;
    } else if (c === "'" || c === '"') {
      q = c;
      inTok = true;
    } else if (c === "\\" && i + 1 < cmd.length) {
      cur += cmd[++i];
      inTok = true;
    } else if (/\s/.test(c)) {
      if (inTok) out.push(cur);
      cur = "";
      inTok = false;
    } else {
      cur += c;
      inTok = true;
    }
  }
  if (q) throw new JobError("VALIDATION_ERROR", "unbalanced quote in params.command");
  if (inTok) out.push(cur);
  return out;
}

function checkToken(t: string): void {
  if (t.includes("://") || t.startsWith("/") || /[=:,;|'"]\//.test(t) || t.split(/[\/=:,;|]/).includes(".."))
    throw new JobError("VALIDATION_ERROR", `'${t.slice(0, 80)}': only bare file names in the work directory`);
  const m = /^([A-Za-z0-9_]+):/.exec(t);
  if (m && PROTOCOLS.has(m[1].toLowerCase()))
    throw new JobError("VALIDATION_ERROR", `protocol '${m[1]}' is not allowed`);
}

/** The argv for ffmpeg and the output names, or a VALIDATION_ERROR. */
export function sandbox(command: string, inputs: string[]): { argv: string[]; outputs: string[] } {
  const tok = splitCommand(command);
  if (tok[0] !== "ffmpeg" || tok.length < 2)
    throw new JobError("VALIDATION_ERROR", "params.command must start with 'ffmpeg'");
  const argv = ["-nostdin", "-hide_banner", "-y"];
  const outputs: string[] = [];
  const wl = ["-protocol_whitelist", "file"];
  for (let i = 1; i < tok.length; i++) {
    const t = tok[i];
    checkToken(t);
    if (t.startsWith("-") && t.length > 1) {
      const opt = t.slice(1).split(":")[0];
      if (DENIED.has(opt)) throw new JobError("VALIDATION_ERROR", `option -${opt} is not allowed`);
      if (FLAGS.has(opt)) {
        argv.push(t);
        continue;
      }
      const v = tok[++i];
      if (v === undefined) throw new JobError("VALIDATION_ERROR", `option ${t} needs a value`);
      checkToken(v);
      if (opt === "i") {
        if (!inputs.includes(v)) throw new JobError("VALIDATION_ERROR", `-i ${v}: not one of the job's inputs`);
        argv.push(...wl, "-i", v);
        continue;
      }
      if (opt === "f" && BLOCKED_FORMATS.has(v.toLowerCase()))
        throw new JobError("VALIDATION_ERROR", `format '${v}' is not allowed`);
      if (FILTER_OPTS.has(opt)) {
        const bad = BLOCKED_FILTERS.find((f) => new RegExp(`(^|[^A-Za-z0-9_])${f}([^A-Za-z0-9_]|$)`).test(v));
        if (bad) throw new JobError("VALIDATION_ERROR", `filter '${bad}' is not allowed in -${opt}`);
      }
      argv.push(t, v);
    } else {
      if (!NAME.test(t)) throw new JobError("VALIDATION_ERROR", `output '${t}': a bare file name`);
      if (inputs.includes(t)) throw new JobError("VALIDATION_ERROR", `output '${t}' would overwrite an input`);
      argv.push(...wl, t);
      outputs.push(t);
    }
  }
  if (!outputs.length) throw new JobError("VALIDATION_ERROR", "the command names no output file");
  return { argv, outputs };
}

// ---- talking to jobring ---------------------------------------------------------------

/** POST a report; retried while jobring is unreachable or answers 5xx.
 *  Returns false when jobring disowns the run (401/404: cancelled, a newer attempt). */
async function report(p: JobringPayload, body: Record<string, unknown>): Promise<boolean> {
  for (let i = 0; i < 8; i++) {
    try {
      const r = await fetch(p.callbackUrl, {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${p.callbackToken}` },
        body: JSON.stringify({ attempt: p.attempt, ...body }),
        signal: AbortSignal.timeout(10_000),
      });
      if (r.status < 500) return r.status !== 401 && r.status !== 404;
    } catch (e) {
      logger.warn("report failed, retrying", { error: String(e) });
    }
    await new Promise((res) => setTimeout(res, 250 * 2 ** i));
  }
  return true;
}

async function download(url: string, file: string, signal: AbortSignal): Promise<number> {
  const r = await fetch(url, { redirect: "follow", signal }); // jobring may answer 307 to S3
  if (!r.ok || !r.body) throw new JobError("INPUT_FETCH_FAILED", `GET ${file}: HTTP ${r.status}`);
  if (Number(r.headers.get("content-length") ?? 0) > MAX_INPUT_BYTES)
    throw new JobError("INPUT_FETCH_FAILED", `${file} is larger than ${MAX_INPUT_BYTES} bytes`);
  let n = 0;
  const limit = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      n += chunk.length;
      cb(n > MAX_INPUT_BYTES ? new JobError("INPUT_FETCH_FAILED", `${file} is too large`) : null, chunk);
    },
  });
  await pipeline(Readable.fromWeb(r.body as import("node:stream/web").ReadableStream), limit,
    createWriteStream(file));
  return n;
}

async function upload(p: JobringPayload, dir: string, name: string): Promise<OutputFile> {
  // A file-backed Blob is streamed, and can be sent again: fetch follows
  // jobring's 307 (S3 mode) keeping PUT and the body. (A Buffer body cannot:
  // Node 20's fetch fails the redirect with a detached ArrayBuffer.)
  const data = await openAsBlob(join(dir, name));
  const url = p.output.uploadUrl.split("{path}").join(encodeURIComponent(name));
  const r = await fetch(url, { method: "PUT", body: data, redirect: "follow",
    headers: { "Content-Type": "application/octet-stream" } });
  if (!r.ok) throw new JobError("OUTPUT_UPLOAD_FAILED", `upload of ${name}: HTTP ${r.status}`);
  const ext = name.split(".").pop()?.toLowerCase() ?? "";
  const type = ["mp4", "mov", "mkv", "webm", "avi", "ts"].includes(ext) ? "video"
    : ["mp3", "wav", "flac", "ogg", "aac", "opus", "m4a"].includes(ext) ? "audio"
    : ["png", "jpg", "jpeg", "gif", "webp"].includes(ext) ? "image"
    : ["srt", "vtt"].includes(ext) ? "captions" : "other";
  return { path: name, size: data.size, type };
}

function runFfmpeg(argv: string[], cwd: string, ms: number, signal: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(FFMPEG, argv, { cwd, stdio: ["ignore", "ignore", "pipe"],
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin" } });
    let tail = "";
    child.stderr.on("data", (b: Buffer) => (tail = (tail + b.toString()).slice(-4000)));
    const kill = () => child.kill("SIGKILL");
    const timer = setTimeout(() => {
      kill();
      reject(new JobError("PROCESSING_TIMEOUT", `ffmpeg ran longer than ${Math.round(ms / 1000)} s`, tail));
    }, ms);
    signal.addEventListener("abort", kill, { once: true });
    child.on("error", (e) => reject(new JobError("PROVIDER_ERROR", `cannot run ffmpeg: ${e.message}`)));
    child.on("close", (code) => {
      clearTimeout(timer);
      signal.removeEventListener("abort", kill);
      if (code === 0) resolve(tail);
      else reject(new JobError("PROCESSING_FAILED", `ffmpeg exited with ${code}`, tail));
    });
  });
}

// ---- the task -------------------------------------------------------------------------

/** One jobring job, start to report. Exported so that it can be run outside
 *  Trigger.dev (e.g. against a local jobring). */
export async function runJob(p: JobringPayload, signal: AbortSignal): Promise<Record<string, unknown>> {
  const dir = await mkdtemp(join(tmpdir(), `jobring-${p.jobId}-`));
  try {
    if (!(await report(p, { event: "running" }))) return { disowned: true };
    const names = Object.keys(p.inputs ?? {});
    for (const n of names)
      if (!NAME.test(n)) throw new JobError("VALIDATION_ERROR", `input name '${n}': a bare file name`);
    const { argv, outputs } = sandbox(String(p.params?.command ?? ""), names);

    await report(p, { event: "progress", progress: 0.05, step: "download" });
    for (const n of names) await download(p.inputs[n].url, join(dir, n), signal);

    await report(p, { event: "progress", progress: 0.2, step: "ffmpeg" });
    const limit = Math.min((Number(p.params?.timeout) || 120) * 1000, Math.max(1000, p.deadline - Date.now()));
    const computeStart = Date.now();
    await runFfmpeg(argv, dir, limit, signal);
    const computeMs = Date.now() - computeStart;

    await report(p, { event: "progress", progress: 0.9, step: "upload" });
    const files: OutputFile[] = [];
    for (const o of outputs) {
      await stat(join(dir, o)).catch(() => {
        throw new JobError("PROCESSING_FAILED", `ffmpeg did not write ${o}`);
      });
      files.push(await upload(p, dir, o));
    }
    await report(p, { event: "complete", output: { files, data: {} }, computeMs });
    return { files, computeMs };
  } catch (e) {
    const err = e instanceof JobError ? e
      : new JobError(signal.aborted ? "PROCESSING_TIMEOUT" : "PROVIDER_ERROR", String(e));
    await report(p, { event: "failed", error: { code: err.code, message: err.message, detail: err.detail } });
    return { error: err.code, message: err.message };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export const jobringFfmpeg = task({
  id: "jobring-ffmpeg",
  retry: { maxAttempts: 1 },
  maxDuration: 3600,
  run: async (payload: JobringPayload, { signal }) => {
    const result = await runJob(payload, signal);
    logger.info(result.error ? "failed" : "complete", { jobId: payload.jobId, ...result });
    return result;
  },
});
