import { ffmpeg } from "@trigger.dev/build/extensions/core";
import { defineConfig } from "@trigger.dev/sdk";

export default defineConfig({
  // your project ref, from the Trigger.dev dashboard (Project settings)
  project: process.env.TRIGGER_PROJECT_REF ?? "proj_replace_me",
  dirs: ["./trigger"],
  runtime: "node",
  maxDuration: 3600,
  // jobring retries a failed dispatch itself, with a new attempt number
  retries: { enabledInDev: false, default: { maxAttempts: 1 } },
  // installs FFmpeg in the deployed image and sets FFMPEG_PATH
  build: { extensions: [ffmpeg()] },
});
