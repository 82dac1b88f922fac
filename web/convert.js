// One photo through one effect: its upload's progress, overload and rate limits retried after
// Retry-After with a countdown, and every failure put in words. Nothing is dropped: a request ends in
// a result or a message.

import { keyHeaders } from "./key.js";

export const RETRIES = 10;

const WORDS = {
  image_too_large: "Too large",
  unsupported_media_type: "Not a type it takes (JPEG, PNG or WebP)",
  invalid_image: "Not a readable image",
  invalid_parameter: "Bad parameters",
  weights_missing: "The model is not installed",
  timeout: "It took too long",
  overloaded: "The service stayed busy",
  replica_lost: "The service kept restarting a part of itself",
  unauthorized: "The API key was refused",
  rate_limited: "This key sent too many requests",
};

/** An error a person can read: what went wrong, then the service's own words (limits, commands). */
export class ConvertError extends Error {}

function explain(status, body) {
  const error = (body && body.error) || {};
  const what = WORDS[error.code] || `The service answered ${status}`;
  return new ConvertError(error.message ? `${what}: ${error.message}` : what);
}

function post(url, file, onUpload) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", url);
    request.responseType = "blob";
    for (const [name, value] of Object.entries(keyHeaders())) request.setRequestHeader(name, value);
    request.upload.onprogress = (event) => event.lengthComputable && onUpload(event.loaded / event.total);
    request.onload = () => resolve(request);
    request.onerror = () => reject(new ConvertError("The service could not be reached"));
    request.send(file);
  });
}

async function json(blob) {
  try {
    return JSON.parse(await blob.text());
  } catch {
    return null;
  }
}

function sleep(seconds) {
  return new Promise((resolve) => setTimeout(resolve, seconds * 1000));
}

/**
 * Sends `file` to `url`; returns {blob, timing} or, for an effect that returns several images,
 * {images: {name: dataUri}, timing}. `progress` hears ("upload", fraction), ("working"), and
 * ("waiting", seconds left) while a 503 is retried.
 */
export async function convert(url, file, returns, progress) {
  for (let attempt = 0; ; attempt++) {
    const request = await post(url, file, (fraction) => progress("upload", fraction));
    progress("working");
    const timing = request.getResponseHeader("Server-Timing") || "";
    if (request.status === 200) {
      if (returns === "images") return { images: (await json(request.response)).images, timing };
      return { blob: request.response, timing };
    }
    const body = await json(request.response);
    // A 503 or 429 with Retry-After (overloaded, replica_lost, rate_limited) is the service asking to
    // be asked again; a 503 without it (weights_missing) would answer the same.
    const retryAfter = Number(request.getResponseHeader("Retry-After"));
    if ([503, 429].includes(request.status) && retryAfter > 0 && attempt < RETRIES) {
      for (let left = Math.ceil(retryAfter) * (attempt + 1); left > 0; left--) {
        progress("waiting", left);
        await sleep(1);
      }
      continue;
    }
    throw explain(request.status, body);
  }
}

/** Server-Timing as words: "decode 12 ms · anime 640 ms (batch=2) · encode 8 ms". */
export function stages(header) {
  return header
    .split(",")
    .map((entry) => entry.trim())
    .filter(Boolean)
    .map((entry) => {
      const [name, ...fields] = entry.split(";");
      const duration = fields.find((f) => f.startsWith("dur="));
      const description = fields.find((f) => f.startsWith("desc="));
      const ms = duration ? `${Math.round(Number(duration.slice(4)))} ms` : "";
      const desc = description ? ` (${description.slice(5).replaceAll('"', "")})` : "";
      return `${name} ${ms}${desc}`;
    })
    .join(" · ");
}
